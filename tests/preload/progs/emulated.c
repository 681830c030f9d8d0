/* Run by exec: checks that this process is emulated too (the preload and
 * its DIME_* variables came through exec) and that its memory works.
 * usage: emulated [LENGTH]  - with LENGTH, argv[2] must be the string
 * long_arg(LENGTH) (the exec'ing parent passed it from remote pages). */
#include "common.h"

static char arg_char(size_t i)
{
	return (char)('a' + pat(i, 7) % 26);
}

int main(int argc, char **argv)
{
	prog_name = "emulated";
	CHECK(getenv("LD_PRELOAD") && strstr(getenv("LD_PRELOAD"), "libdime-preload.so"),
	      "LD_PRELOAD lost across exec");
	CHECK(getenv("DIME_LOCAL_PAGES"), "DIME_LOCAL_PAGES lost across exec");
	if (argc > 2) {
		size_t n = strtoull(argv[1], NULL, 10);
		CHECK(strlen(argv[2]) == n, "argument of %zu bytes, want %zu", strlen(argv[2]), n);
		for (size_t i = 0; i < n; i++)
			CHECK(argv[2][i] == arg_char(i), "argument byte %zu is '%c', want '%c'", i,
			      argv[2][i], arg_char(i));
	}
	enum { LEN = 128 * PAGE };
	static struct sweeper sw;
	uint8_t *b = heap_pages(LEN);
	fill(b, LEN, 5);
	evict_all(&sw);
	need_remote(&sw, b, LEN, "a buffer of the exec'd program");
	verify(b, LEN, 5, "a buffer of the exec'd program");
	free(b);
	return 0;
}
