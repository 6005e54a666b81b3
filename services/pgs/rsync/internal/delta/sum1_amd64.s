//go:build amd64 && !purego

#include "textflag.h"

// Byte k of a 32-byte chunk weighs 32-k in the weighted sum.
DATA sum1Weights<>+0(SB)/8, $0x191a1b1c1d1e1f20
DATA sum1Weights<>+8(SB)/8, $0x1112131415161718
DATA sum1Weights<>+16(SB)/8, $0x090a0b0c0d0e0f10
DATA sum1Weights<>+24(SB)/8, $0x0102030405060708
GLOBL sum1Weights<>(SB), RODATA|NOPTR, $32

// Sixteen 16-bit ones: adds pairs of 16-bit lanes into 32-bit lanes.
DATA sum1Ones<>+0(SB)/8, $0x0001000100010001
DATA sum1Ones<>+8(SB)/8, $0x0001000100010001
DATA sum1Ones<>+16(SB)/8, $0x0001000100010001
DATA sum1Ones<>+24(SB)/8, $0x0001000100010001
GLOBL sum1Ones<>(SB), RODATA|NOPTR, $32

// 0x80 in every byte: flipping the top bit turns a signed byte c into the unsigned c+128.
DATA sum1Flip<>+0(SB)/8, $0x8080808080808080
DATA sum1Flip<>+8(SB)/8, $0x8080808080808080
DATA sum1Flip<>+16(SB)/8, $0x8080808080808080
DATA sum1Flip<>+24(SB)/8, $0x8080808080808080
GLOBL sum1Flip<>(SB), RODATA|NOPTR, $32

// func sum1AVX2(b []byte) (s1, ps, w uint32)
// len(b) is a positive multiple of 32. Over the chunks of 32 bytes, each byte taken as c+128:
// s1 is the sum of all bytes, ps the sum over chunks of the bytes of the chunks before it, w the
// sum over chunks of byte k times 32-k; all modulo 2^32.
TEXT ·sum1AVX2(SB), NOSPLIT, $0-36
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	SHRQ $5, CX
	VMOVDQU sum1Weights<>(SB), Y13
	VMOVDQU sum1Ones<>(SB), Y12
	VMOVDQU sum1Flip<>(SB), Y15
	VPXOR   Y14, Y14, Y14
	VPXOR   Y1, Y1, Y1
	VPXOR   Y2, Y2, Y2
	VPXOR   Y5, Y5, Y5

loop:
	VMOVDQU    (SI), Y0
	VPXOR      Y15, Y0, Y0
	VPADDD     Y1, Y2, Y2
	VPSADBW    Y14, Y0, Y3
	VPADDD     Y3, Y1, Y1
	VPMADDUBSW Y13, Y0, Y4
	VPMADDWD   Y12, Y4, Y4
	VPADDD     Y4, Y5, Y5
	ADDQ       $32, SI
	DECQ       CX
	JNZ        loop

	VEXTRACTI128 $1, Y1, X6
	VPADDD       X6, X1, X1
	VPSHUFD      $0x4e, X1, X6
	VPADDD       X6, X1, X1
	VPSHUFD      $0xb1, X1, X6
	VPADDD       X6, X1, X1
	VMOVD        X1, AX
	MOVL         AX, s1+24(FP)

	VEXTRACTI128 $1, Y2, X6
	VPADDD       X6, X2, X2
	VPSHUFD      $0x4e, X2, X6
	VPADDD       X6, X2, X2
	VPSHUFD      $0xb1, X2, X6
	VPADDD       X6, X2, X2
	VMOVD        X2, AX
	MOVL         AX, ps+28(FP)

	VEXTRACTI128 $1, Y5, X6
	VPADDD       X6, X5, X5
	VPSHUFD      $0x4e, X5, X6
	VPADDD       X6, X5, X5
	VPSHUFD      $0xb1, X5, X6
	VPADDD       X6, X5, X5
	VMOVD        X5, AX
	MOVL         AX, w+32(FP)

	VZEROUPPER
	RET
