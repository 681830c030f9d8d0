/* The helper thread dime-agent starts inside the target (x86_64): the
 * kernel only lets UFFDIO_MOVE run in the mm of the uffd (fs/userfaultfd.c,
 * userfaultfd_move: "Do not allow cross-mm moves"), so the agent's page
 * moves are done by this thread. See helper.c for the protocol; the code
 * is copied into the target, so it is position-independent and reads its
 * parameters from the data block after it.
 *
 * Entry runs in the target's main thread under compel_run_at(): clone()
 * a thread on the stack the agent mapped (signals stay blocked in it:
 * compel blocks them all while it drives the main thread), then trap back
 * to compel. The thread names itself, then loops: read a struct
 * uffdio_move without its last field from cmd_fd, ioctl(UFFDIO_MOVE) (or,
 * if the top bit of mode is set, madvise(dst, len, MADV_DONTNEED)), write
 * { move, return value } to res_fd. End of file on cmd_fd (the agent
 * closed it or died) ends the thread. */
#if defined(__x86_64__)
	.section .text.dime_helper, "ax"
	.globl dime_helper_start, dime_helper_data, dime_helper_end
	.p2align 4
dime_helper_start:
	mov	$56, %eax			/* clone */
	mov	$0x50f00, %edi			/* VM FS FILES SIGHAND THREAD SYSVSEM */
	mov	stack_top(%rip), %rsi
	xor	%edx, %edx
	xor	%r10d, %r10d
	xor	%r8d, %r8d
	syscall
	test	%rax, %rax
	jz	1f
	int3					/* parent: back to compel */
1:	mov	$157, %eax			/* prctl(PR_SET_NAME, name) */
	mov	$15, %edi
	lea	name(%rip), %rsi
	xor	%edx, %edx
	xor	%r10d, %r10d
	xor	%r8d, %r8d
	syscall
	sub	$64, %rsp
2:	xor	%eax, %eax			/* read(cmd_fd, rsp, 32) */
	mov	cmd_fd(%rip), %edi
	mov	%rsp, %rsi
	mov	$32, %edx
	syscall
	cmp	$32, %rax
	jne	3f
	movq	$0, 32(%rsp)
	mov	24(%rsp), %rax			/* mode with the top bit: discard */
	test	%rax, %rax
	js	4f
	mov	$16, %eax			/* ioctl(uffd, UFFDIO_MOVE, rsp) */
	mov	uffd(%rip), %edi
	mov	$0xc028aa05, %esi
	mov	%rsp, %rdx
	syscall
5:	mov	%rax, 40(%rsp)
	mov	$1, %eax			/* write(res_fd, rsp + 32, 16) */
	mov	res_fd(%rip), %edi
	lea	32(%rsp), %rsi
	mov	$16, %edx
	syscall
	jmp	2b
3:	mov	$60, %eax			/* exit(0): this thread only */
	xor	%edi, %edi
	syscall
4:	mov	$28, %eax			/* madvise(dst, len, MADV_DONTNEED) */
	mov	(%rsp), %rdi
	mov	16(%rsp), %rsi
	mov	$4, %edx
	syscall
	jmp	5b
	.p2align 3
dime_helper_data:
stack_top:	.quad 0
cmd_fd:		.long 0
res_fd:		.long 0
uffd:		.long 0
		.long 0
name:		.asciz "dime-helper"
	.p2align 3
dime_helper_end:
#endif
	.section .note.GNU-stack, "", @progbits
