/* The helper thread dime-agent starts inside the target (aarch64); the
 * same program as helper-x86_64.S, which explains it. Assembled with GNU as
 * for aarch64 and read against the x86_64 version; not yet run on an
 * aarch64 machine. */
#if defined(__aarch64__)
	.section .text.dime_helper, "ax"
	.globl dime_helper_start, dime_helper_data, dime_helper_end
	.p2align 4
dime_helper_start:
	mov	x8, #220			/* clone(flags, stack, 0, 0, 0) */
	mov	x0, #0x0f00			/* VM FS FILES SIGHAND THREAD SYSVSEM */
	movk	x0, #0x5, lsl #16
	ldr	x1, stack_top
	mov	x2, xzr
	mov	x3, xzr
	mov	x4, xzr
	svc	#0
	cbz	x0, 1f
	brk	#0				/* parent: back to compel */
1:	mov	x8, #167			/* prctl(PR_SET_NAME, name) */
	mov	x0, #15
	adr	x1, name
	mov	x2, xzr
	mov	x3, xzr
	mov	x4, xzr
	svc	#0
	sub	sp, sp, #64
2:	mov	x8, #63				/* read(cmd_fd, sp, 32) */
	ldr	w0, cmd_fd
	mov	x1, sp
	mov	x2, #32
	svc	#0
	cmp	x0, #32
	b.ne	3f
	str	xzr, [sp, #32]
	ldr	x9, [sp, #24]			/* mode with the top bit: discard */
	tbnz	x9, #63, 4f
	mov	x8, #29				/* ioctl(uffd, UFFDIO_MOVE, sp) */
	ldr	w0, uffd
	mov	w1, #0xaa05
	movk	w1, #0xc028, lsl #16
	mov	x2, sp
	svc	#0
5:	str	x0, [sp, #40]
	mov	x8, #64				/* write(res_fd, sp + 32, 16) */
	ldr	w0, res_fd
	add	x1, sp, #32
	mov	x2, #16
	svc	#0
	b	2b
3:	mov	x8, #93				/* exit(0): this thread only */
	mov	x0, xzr
	svc	#0
4:	mov	x8, #233			/* madvise(dst, len, MADV_DONTNEED) */
	ldr	x0, [sp]
	ldr	x1, [sp, #16]
	mov	x2, #4
	svc	#0
	b	5b
	.p2align 3
dime_helper_data:
stack_top:	.quad 0
cmd_fd:		.word 0
res_fd:		.word 0
uffd:		.word 0
		.word 0
name:		.asciz "dime-helper"
	.p2align 3
dime_helper_end:
#endif
	.section .note.GNU-stack, "", %progbits
