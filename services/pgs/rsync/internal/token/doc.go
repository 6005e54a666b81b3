// Package token encodes and decodes rsync protocol-27 file-data token streams, plain and -z ("zlib").
// It must not allocate by a peer-sent length, trust a peer-sent token index, or know about files.
//
// # Wire formats
//
// Plain: int32 t > 0 is followed by t literal bytes, t = 0 ends the file, t < 0 refers to basis
// block -(t+1). Compressed (-z at protocol 27): flag bytes 0x00 end the file; 0x40|hi6, lo8 carry
// up to 16,383 bytes of raw deflate; 0x80|r is block last+r, 0xC0|r adds a 16-bit run of
// following blocks; 0x20 + int32 is an absolute block, 0x21 + int32 + 16-bit run likewise. Each
// run of literal data is sync-flushed with its 00 00 ff ff tail stripped, and matched blocks are
// added to the deflate history on both sides (in 64 KiB pieces that, below protocol 31, all
// repeat the block's first bytes). Compression state starts afresh with every file.
//
// # Use
//
// The sender writes each file's delta in order, then ends it (the caller then writes the
// whole-file checksum):
//
//	w := token.NewWriter(out)                 // or token.NewCompressedWriter(out, level) for -z
//	w.Literal(data)                           // data the receiver lacks
//	w.Block(i, blockBytes)                    // basis block i (its bytes feed the -z history)
//	w.End()
//
// The receiver reads tokens until End:
//
//	r := token.NewReader(in)                  // or token.NewCompressedReader(in) for -z
//	for {
//		t, err := r.Next()
//		switch t.Kind {
//		case token.Literal: // t.Data, valid until the next call, at most ChunkSize bytes
//		case token.Block:   // check t.Block against the sum head's count, copy the old block,
//			r.AddHistory(oldBlock) // then hand its bytes back (required with -z)
//		case token.End:     // read the whole-file checksum
//		}
//	}
//
// A Reader reads exactly the bytes of the tokens it returns, never more, so the stream can go on
// with other data; give it a buffered reader (an io.ByteReader is read byte by byte). Literal
// lengths announced by the peer are streamed in ChunkSize pieces, never allocated.
package token
