package rdb

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Kind is a value's Redis type, whatever its encoding.
type Kind string

// The kinds, as TYPE names them.
const (
	KindString Kind = "string"
	KindList   Kind = "list"
	KindSet    Kind = "set"
	KindZSet   Kind = "zset"
	KindHash   Kind = "hash"
	KindStream Kind = "stream"
	KindModule Kind = "module"
)

// KindOf is the kind of an RDB value type.
func KindOf(typ byte) Kind {
	switch typ {
	case TypeString:
		return KindString
	case TypeList, TypeListZiplist, TypeListQuicklist, TypeListQuicklist2:
		return KindList
	case TypeSet, TypeSetIntset, TypeSetListpack:
		return KindSet
	case TypeZSet, TypeZSet2, TypeZSetZiplist, TypeZSetListpack:
		return KindZSet
	case TypeHash, TypeHashZipmap, TypeHashZiplist, TypeHashListpack:
		return KindHash
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		return KindStream
	}
	return KindModule
}

// ZMember is a sorted-set member with its score.
type ZMember struct {
	Member []byte
	Score  float64
}

// Value is a decoded value; the fields of its Kind are set.
type Value struct {
	Kind Kind
	Str  []byte
	// Items are a list's elements in order or a set's members.
	Items [][]byte
	// Pairs are a hash's fields and values, field first.
	Pairs [][2][]byte
	Z     []ZMember
	// Stream is a stream's entries and groups.
	Stream *Stream
}

// Decode turns a value's payload (as an Entry holds it) into plain values.
func Decode(typ byte, payload []byte) (*Value, error) {
	p := &Parser{r: bufio.NewReader(bytes.NewReader(payload)), crc: &redisCRC{}, Modules: map[string]bool{}}
	v := &Value{Kind: KindOf(typ)}
	var err error
	switch typ {
	case TypeString:
		v.Str, err = p.str()
	case TypeList, TypeSet:
		v.Items, err = p.strs()
	case TypeHash:
		var s [][]byte
		if s, err = p.strsN(2); err == nil {
			v.Pairs = pairs(s)
		}
	case TypeZSet, TypeZSet2:
		var n uint64
		if n, err = p.length(); err != nil {
			break
		}
		for range n {
			m, err2 := p.str()
			if err2 != nil {
				return nil, err2
			}
			var sc float64
			if typ == TypeZSet {
				sc, err2 = p.oldDouble()
			} else {
				var b []byte
				b, err2 = p.read(8)
				if err2 == nil {
					sc = math.Float64frombits(binary.LittleEndian.Uint64(b))
				}
			}
			if err2 != nil {
				return nil, err2
			}
			v.Z = append(v.Z, ZMember{m, sc})
		}
	case TypeListZiplist, TypeSetIntset, TypeZSetZiplist, TypeHashZiplist, TypeHashListpack, TypeZSetListpack, TypeSetListpack:
		var blob []byte
		if blob, err = p.str(); err != nil {
			break
		}
		var items [][]byte
		switch typ {
		case TypeSetIntset:
			items, err = intset(blob)
		case TypeListZiplist, TypeZSetZiplist, TypeHashZiplist:
			items, err = ziplist(blob)
		default:
			items, err = listpack(blob)
		}
		if err != nil {
			break
		}
		switch v.Kind {
		case KindHash:
			v.Pairs = pairs(items)
		case KindZSet:
			for i := 0; i+1 < len(items); i += 2 {
				sc, err2 := strconv.ParseFloat(string(items[i+1]), 64)
				if err2 != nil {
					return nil, fmt.Errorf("zset score %q: %w", items[i+1], err2)
				}
				v.Z = append(v.Z, ZMember{items[i], sc})
			}
		default:
			v.Items = items
		}
	case TypeListQuicklist, TypeListQuicklist2:
		var n uint64
		if n, err = p.length(); err != nil {
			break
		}
		for range n {
			container := uint64(2)
			if typ == TypeListQuicklist2 {
				if container, err = p.length(); err != nil {
					return nil, err
				}
			}
			node, err2 := p.str()
			if err2 != nil {
				return nil, err2
			}
			if container == 1 { // a plain node: one large element
				v.Items = append(v.Items, node)
				continue
			}
			var items [][]byte
			if typ == TypeListQuicklist {
				items, err2 = ziplist(node)
			} else {
				items, err2 = listpack(node)
			}
			if err2 != nil {
				return nil, err2
			}
			v.Items = append(v.Items, items...)
		}
	case TypeStreamListpacks, TypeStreamListpacks2, TypeStreamListpacks3:
		v.Stream, err = p.stream(typ, &Stream{})
	default:
		return nil, fmt.Errorf("values of RDB type %d are not decoded", typ)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

func pairs(s [][]byte) [][2][]byte {
	out := make([][2][]byte, 0, len(s)/2)
	for i := 0; i+1 < len(s); i += 2 {
		out = append(out, [2][]byte{s[i], s[i+1]})
	}
	return out
}

func (p *Parser) strs() ([][]byte, error) { return p.strsN(1) }

func (p *Parser) strsN(per int) ([][]byte, error) {
	n, err := p.length()
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, min(n*uint64(per), 1<<16))
	for range n * uint64(per) {
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// listpack decodes a listpack's elements; integers come as their decimal
// text, as Redis returns them.
func listpack(b []byte) ([][]byte, error) {
	if len(b) < 7 {
		return nil, errors.New("listpack too short")
	}
	var out [][]byte
	i := 6
	for {
		if i >= len(b) {
			return nil, errors.New("listpack without its end byte")
		}
		c := b[i]
		if c == 0xff {
			return out, nil
		}
		var elem []byte
		var n int // encoding plus data bytes
		switch {
		case c&0x80 == 0:
			elem, n = strconv.AppendInt(nil, int64(c&0x7f), 10), 1
		case c&0xc0 == 0x80:
			l := int(c & 0x3f)
			if i+1+l > len(b) {
				return nil, errors.New("listpack string past the end")
			}
			elem, n = b[i+1:i+1+l], 1+l
		case c&0xe0 == 0xc0:
			if i+1 >= len(b) {
				return nil, errors.New("listpack truncated")
			}
			u := int64(c&0x1f)<<8 | int64(b[i+1])
			if u >= 1<<12 {
				u -= 1 << 13
			}
			elem, n = strconv.AppendInt(nil, u, 10), 2
		case c&0xf0 == 0xe0:
			if i+1 >= len(b) {
				return nil, errors.New("listpack truncated")
			}
			l := int(c&0x0f)<<8 | int(b[i+1])
			if i+2+l > len(b) {
				return nil, errors.New("listpack string past the end")
			}
			elem, n = b[i+2:i+2+l], 2+l
		case c == 0xf0:
			if i+5 > len(b) {
				return nil, errors.New("listpack truncated")
			}
			l := int(binary.LittleEndian.Uint32(b[i+1:]))
			if l < 0 || i+5+l > len(b) {
				return nil, errors.New("listpack string past the end")
			}
			elem, n = b[i+5:i+5+l], 5+l
		case c >= 0xf1 && c <= 0xf4:
			size := map[byte]int{0xf1: 2, 0xf2: 3, 0xf3: 4, 0xf4: 8}[c]
			if i+1+size > len(b) {
				return nil, errors.New("listpack truncated")
			}
			var u uint64
			for k := size - 1; k >= 0; k-- {
				u = u<<8 | uint64(b[i+1+k])
			}
			bits := uint(size * 8)
			v := int64(u<<(64-bits)) >> (64 - bits) // sign-extended
			elem, n = strconv.AppendInt(nil, v, 10), 1+size
		default:
			return nil, fmt.Errorf("listpack: unknown encoding byte %#x", c)
		}
		out = append(out, elem)
		i += n + backlenSize(n)
	}
}

func backlenSize(n int) int {
	switch {
	case n < 128:
		return 1
	case n < 16384:
		return 2
	case n < 2097152:
		return 3
	case n < 268435456:
		return 4
	}
	return 5
}

// ziplist decodes a ziplist (Redis before 7), integers as decimal text.
func ziplist(b []byte) ([][]byte, error) {
	if len(b) < 11 {
		return nil, errors.New("ziplist too short")
	}
	var out [][]byte
	i := 10
	for {
		if i >= len(b) {
			return nil, errors.New("ziplist without its end byte")
		}
		if b[i] == 0xff {
			return out, nil
		}
		if b[i] == 0xfe {
			i += 5
		} else {
			i++
		}
		if i >= len(b) {
			return nil, errors.New("ziplist truncated")
		}
		c := b[i]
		need := func(k int) error {
			if i+k > len(b) {
				return errors.New("ziplist entry past the end")
			}
			return nil
		}
		switch c >> 6 {
		case 0:
			l := int(c & 0x3f)
			if err := need(1 + l); err != nil {
				return nil, err
			}
			out = append(out, b[i+1:i+1+l])
			i += 1 + l
			continue
		case 1:
			if err := need(2); err != nil {
				return nil, err
			}
			l := int(c&0x3f)<<8 | int(b[i+1])
			if err := need(2 + l); err != nil {
				return nil, err
			}
			out = append(out, b[i+2:i+2+l])
			i += 2 + l
			continue
		case 2:
			if err := need(5); err != nil {
				return nil, err
			}
			l := int(binary.BigEndian.Uint32(b[i+1:]))
			if err := need(5 + l); err != nil {
				return nil, err
			}
			out = append(out, b[i+5:i+5+l])
			i += 5 + l
			continue
		}
		var v int64
		var size int
		switch c {
		case 0xc0:
			size = 2
		case 0xd0:
			size = 4
		case 0xe0:
			size = 8
		case 0xf0:
			size = 3
		case 0xfe:
			size = 1
		default:
			if c >= 0xf1 && c <= 0xfd {
				out = append(out, strconv.AppendInt(nil, int64(c&0x0f)-1, 10))
				i++
				continue
			}
			return nil, fmt.Errorf("ziplist: unknown encoding %#x", c)
		}
		if err := need(1 + size); err != nil {
			return nil, err
		}
		var u uint64
		for k := size - 1; k >= 0; k-- {
			u = u<<8 | uint64(b[i+1+k])
		}
		bits := uint(size * 8)
		v = int64(u<<(64-bits)) >> (64 - bits)
		out = append(out, strconv.AppendInt(nil, v, 10))
		i += 1 + size
	}
}

func intset(b []byte) ([][]byte, error) {
	if len(b) < 8 {
		return nil, errors.New("intset too short")
	}
	enc := int(binary.LittleEndian.Uint32(b))
	n := int(binary.LittleEndian.Uint32(b[4:]))
	if enc != 2 && enc != 4 && enc != 8 || 8+n*enc > len(b) {
		return nil, errors.New("intset damaged")
	}
	out := make([][]byte, 0, n)
	for k := range n {
		x := b[8+k*enc:]
		var v int64
		switch enc {
		case 2:
			v = int64(int16(binary.LittleEndian.Uint16(x)))
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(x)))
		default:
			v = int64(binary.LittleEndian.Uint64(x))
		}
		out = append(out, strconv.AppendInt(nil, v, 10))
	}
	return out, nil
}
