package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"math"
	"strconv"
)

// The primitives of the format: lengths, strings in their encodings
// (plain, integer, LZF), doubles, and Redis's CRC64.

var crcTable = crc64.MakeTable(0x95AC9329AC4BC9B5) // Jones, reflected

// CRC64 is Redis's crc64 (Jones polynomial, reflected, no final xor) of p
// continued from crc.
func CRC64(crc uint64, p []byte) uint64 {
	return ^crc64.Update(^crc, crcTable, p)
}

type redisCRC struct{ sum uint64 }

func (c *redisCRC) Write(p []byte) (int, error) { c.sum = CRC64(c.sum, p); return len(p), nil }
func (c *redisCRC) Sum(b []byte) []byte         { return binary.LittleEndian.AppendUint64(b, c.sum) }
func (c *redisCRC) Reset()                      { c.sum = 0 }
func (c *redisCRC) Size() int                   { return 8 }
func (c *redisCRC) BlockSize() int              { return 1 }
func (c *redisCRC) Sum64() uint64               { return c.sum }

func (p *Parser) readRaw(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(p.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	p.Read += int64(n)
	return b, nil
}

func (p *Parser) read(n int) ([]byte, error) {
	b, err := p.readRaw(n)
	if err != nil {
		return nil, err
	}
	p.crc.Write(b)
	if p.record {
		p.rec = append(p.rec, b...)
	}
	return b, nil
}

func (p *Parser) byte() (byte, error) {
	b, err := p.read(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// lengthOrEnc reads a length, or an encoding marker for a string.
func (p *Parser) lengthOrEnc() (n uint64, encoded bool, err error) {
	b, err := p.byte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		c, err := p.byte()
		if err != nil {
			return 0, false, err
		}
		return uint64(b&0x3f)<<8 | uint64(c), false, nil
	case 2:
		switch b {
		case 0x80:
			x, err := p.read(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(x)), false, nil
		case 0x81:
			x, err := p.read(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(x), false, nil
		}
		return 0, false, fmt.Errorf("bad length byte %#x", b)
	}
	return uint64(b & 0x3f), true, nil
}

func (p *Parser) length() (uint64, error) {
	n, enc, err := p.lengthOrEnc()
	if err == nil && enc {
		err = errors.New("an encoded string where a length belongs")
	}
	return n, err
}

// maxAlloc bounds one string read: a damaged length must not make the
// parser allocate the machine's memory.
const maxAlloc = 1 << 32

func (p *Parser) str() ([]byte, error) {
	n, enc, err := p.lengthOrEnc()
	if err != nil {
		return nil, err
	}
	if !enc {
		if n > maxAlloc {
			return nil, fmt.Errorf("string of %d bytes is beyond reason", n)
		}
		return p.read(int(n))
	}
	switch n {
	case 0:
		b, err := p.read(1)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(int8(b[0])), 10), nil
	case 1:
		b, err := p.read(2)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(int16(binary.LittleEndian.Uint16(b))), 10), nil
	case 2:
		b, err := p.read(4)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(nil, int64(int32(binary.LittleEndian.Uint32(b))), 10), nil
	case 3:
		clen, err := p.length()
		if err != nil {
			return nil, err
		}
		ulen, err := p.length()
		if err != nil {
			return nil, err
		}
		if clen > maxAlloc || ulen > maxAlloc {
			return nil, errors.New("LZF string beyond reason")
		}
		c, err := p.read(int(clen))
		if err != nil {
			return nil, err
		}
		return lzfDecompress(c, int(ulen))
	}
	return nil, fmt.Errorf("unknown string encoding %d", n)
}

// skipStr consumes a string without decompressing it.
func (p *Parser) skipStr() error {
	n, enc, err := p.lengthOrEnc()
	if err != nil {
		return err
	}
	if !enc {
		return p.skip(n)
	}
	switch n {
	case 0:
		return p.skip(1)
	case 1:
		return p.skip(2)
	case 2:
		return p.skip(4)
	case 3:
		clen, err := p.length()
		if err != nil {
			return err
		}
		if _, err := p.length(); err != nil {
			return err
		}
		return p.skip(clen)
	}
	return fmt.Errorf("unknown string encoding %d", n)
}

// skip consumes n bytes in bounded pieces.
func (p *Parser) skip(n uint64) error {
	for n > 0 {
		k := min(n, 1<<20)
		if _, err := p.read(int(k)); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func (p *Parser) oldDouble() (float64, error) {
	n, err := p.byte()
	if err != nil {
		return 0, err
	}
	switch n {
	case 253:
		return math.NaN(), nil
	case 254:
		return math.Inf(1), nil
	case 255:
		return math.Inf(-1), nil
	}
	b, err := p.read(int(n))
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(string(b), 64)
}

func lzfDecompress(in []byte, ulen int) ([]byte, error) {
	out := make([]byte, 0, ulen)
	for i := 0; i < len(in); {
		ctrl := int(in[i])
		i++
		if ctrl < 32 {
			n := ctrl + 1
			if i+n > len(in) {
				return nil, errors.New("LZF: literal past the end")
			}
			out = append(out, in[i:i+n]...)
			i += n
			continue
		}
		n := ctrl >> 5
		if n == 7 {
			if i >= len(in) {
				return nil, errors.New("LZF: truncated")
			}
			n += int(in[i])
			i++
		}
		if i >= len(in) {
			return nil, errors.New("LZF: truncated")
		}
		ref := len(out) - ((ctrl & 0x1f) << 8) - 1 - int(in[i])
		i++
		if ref < 0 {
			return nil, errors.New("LZF: back reference before the start")
		}
		for k := 0; k < n+2; k++ {
			out = append(out, out[ref+k])
		}
	}
	if len(out) != ulen {
		return nil, fmt.Errorf("LZF: %d bytes decompressed, %d announced", len(out), ulen)
	}
	return out, nil
}
