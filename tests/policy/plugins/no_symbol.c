/* A shared object that is not a policy: no dime_policy_plugin symbol. */
const int not_a_policy = 1;
