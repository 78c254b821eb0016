package rdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// StreamID is a stream entry's id.
type StreamID struct{ Ms, Seq uint64 }

func (id StreamID) String() string { return fmt.Sprintf("%d-%d", id.Ms, id.Seq) }

// StreamEntry is one live entry, its fields and values in order.
type StreamEntry struct {
	ID     StreamID
	Fields [][]byte
}

// Stream is a decoded stream.
type Stream struct {
	Entries                   []StreamEntry
	Length                    uint64
	LastID, FirstID, MaxDelID StreamID
	EntriesAdded              uint64
	Groups                    []Group
}

// Group is a consumer group.
type Group struct {
	Name        []byte
	LastID      StreamID
	EntriesRead uint64
	Pending     []Pending
	Consumers   []Consumer
}

// Pending is an entry of a group's pending list.
type Pending struct {
	ID            StreamID
	DeliveryMs    int64
	DeliveryCount uint64
}

// Consumer is a group's consumer and the ids it has pending.
type Consumer struct {
	Name     []byte
	SeenMs   int64
	ActiveMs int64
	Pending  []StreamID
}

// stream consumes a stream of type typ; with s it also decodes into s.
func (p *Parser) stream(typ byte, s *Stream) (*Stream, error) {
	n, err := p.length()
	if err != nil {
		return nil, err
	}
	for range n {
		node, err := p.str()
		if err != nil {
			return nil, err
		}
		if len(node) != 16 {
			return nil, errors.New("stream node key is not a 128-bit id")
		}
		lp, err := p.str()
		if err != nil {
			return nil, err
		}
		if s != nil {
			master := StreamID{binary.BigEndian.Uint64(node), binary.BigEndian.Uint64(node[8:])}
			if err := s.addNode(master, lp); err != nil {
				return nil, err
			}
		}
	}
	var nums []uint64
	count := 3 // length, last id
	if typ >= TypeStreamListpacks2 {
		count += 5 // first id, max deleted id, entries added
	}
	for range count {
		v, err := p.length()
		if err != nil {
			return nil, err
		}
		nums = append(nums, v)
	}
	if s != nil {
		s.Length, s.LastID = nums[0], StreamID{nums[1], nums[2]}
		if typ >= TypeStreamListpacks2 {
			s.FirstID, s.MaxDelID, s.EntriesAdded = StreamID{nums[3], nums[4]}, StreamID{nums[5], nums[6]}, nums[7]
		}
	}
	groups, err := p.length()
	if err != nil {
		return nil, err
	}
	for range groups {
		var g Group
		if g.Name, err = p.str(); err != nil {
			return nil, err
		}
		if g.LastID, err = p.lengthID(); err != nil {
			return nil, err
		}
		if typ >= TypeStreamListpacks2 {
			if g.EntriesRead, err = p.length(); err != nil {
				return nil, err
			}
		}
		pel, err := p.length()
		if err != nil {
			return nil, err
		}
		for range pel {
			id, err := p.rawID()
			if err != nil {
				return nil, err
			}
			t, err := p.read(8)
			if err != nil {
				return nil, err
			}
			dc, err := p.length()
			if err != nil {
				return nil, err
			}
			g.Pending = append(g.Pending, Pending{id, int64(binary.LittleEndian.Uint64(t)), dc})
		}
		consumers, err := p.length()
		if err != nil {
			return nil, err
		}
		for range consumers {
			var c Consumer
			if c.Name, err = p.str(); err != nil {
				return nil, err
			}
			t, err := p.read(8)
			if err != nil {
				return nil, err
			}
			c.SeenMs = int64(binary.LittleEndian.Uint64(t))
			if typ >= TypeStreamListpacks3 {
				if t, err = p.read(8); err != nil {
					return nil, err
				}
				c.ActiveMs = int64(binary.LittleEndian.Uint64(t))
			}
			cp, err := p.length()
			if err != nil {
				return nil, err
			}
			for range cp {
				id, err := p.rawID()
				if err != nil {
					return nil, err
				}
				c.Pending = append(c.Pending, id)
			}
			g.Consumers = append(g.Consumers, c)
		}
		if s != nil {
			s.Groups = append(s.Groups, g)
		}
	}
	return s, nil
}

func (p *Parser) lengthID() (StreamID, error) {
	ms, err := p.length()
	if err != nil {
		return StreamID{}, err
	}
	seq, err := p.length()
	return StreamID{ms, seq}, err
}

func (p *Parser) rawID() (StreamID, error) {
	b, err := p.read(16)
	if err != nil {
		return StreamID{}, err
	}
	return StreamID{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}, nil
}

// Entry flags in a stream listpack.
const (
	streamDeleted    = 1
	streamSameFields = 2
)

// addNode decodes one listpack of entries whose ids are relative to master.
func (s *Stream) addNode(master StreamID, lp []byte) error {
	el, err := listpack(lp)
	if err != nil {
		return err
	}
	num := func(i int) (int64, error) {
		if i >= len(el) {
			return 0, errors.New("stream listpack truncated")
		}
		return strconv.ParseInt(string(el[i]), 10, 64)
	}
	// Master entry: count, deleted, number of master fields, the fields, 0.
	count, err := num(0)
	if err != nil {
		return err
	}
	deleted, err := num(1)
	if err != nil {
		return err
	}
	nf, err := num(2)
	if err != nil {
		return err
	}
	i := 3
	if i+int(nf) >= len(el) {
		return errors.New("stream master entry truncated")
	}
	masterFields := el[i : i+int(nf)]
	i += int(nf) + 1
	for range count + deleted {
		flags, err := num(i)
		if err != nil {
			return err
		}
		msd, err := num(i + 1)
		if err != nil {
			return err
		}
		seqd, err := num(i + 2)
		if err != nil {
			return err
		}
		i += 3
		var fields [][]byte
		if flags&streamSameFields != 0 {
			if i+len(masterFields) > len(el) {
				return errors.New("stream entry truncated")
			}
			for k, f := range masterFields {
				fields = append(fields, f, el[i+k])
			}
			i += len(masterFields)
		} else {
			n, err := num(i)
			if err != nil {
				return err
			}
			i++
			if i+2*int(n) > len(el) {
				return errors.New("stream entry truncated")
			}
			fields = append(fields, el[i:i+2*int(n)]...)
			i += 2 * int(n)
		}
		i++ // lp-count
		if flags&streamDeleted == 0 {
			s.Entries = append(s.Entries, StreamEntry{StreamID{master.Ms + uint64(msd), master.Seq + uint64(seqd)}, fields})
		}
	}
	return nil
}
