// Package catalog resolves the instance ids that cloud scripts use (SrcInfo
// and DstInfo InstanceId with access type cdb) to database addresses, from a
// JSON file the DBA keeps. It re-reads the file when it changes, so adding
// an instance needs no restart.
//
// The file is a JSON array:
//
//	[{"InstanceId": "cdb-prod01", "Engine": "mysql", "Host": "10.0.0.5",
//	  "Port": 3306, "User": "dts", "Password": "..."}]
//
// User and Password are optional: a job's own SrcInfo/DstInfo credentials
// win over them.
package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Instance is one entry of the catalogue.
type Instance struct {
	InstanceId string
	// Engine is the database type (mysql, mariadb, percona, postgresql...).
	Engine   string
	Host     string
	Port     int
	User     string `json:",omitempty"`
	Password string `json:",omitempty"`
}

// ErrUnknown is returned for an id the catalogue does not hold.
var ErrUnknown = errors.New("unknown instance")

// Catalog is the file-backed catalogue. A missing file is an empty one.
type Catalog struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	byID    map[string]Instance
	loadErr error
}

// Open returns the catalogue kept at path (which need not exist yet).
func Open(path string) *Catalog {
	return &Catalog{path: path}
}

// Path is where the catalogue is read from.
func (c *Catalog) Path() string { return c.path }

// Lookup resolves an instance id.
func (c *Catalog) Lookup(id string) (Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(); err != nil {
		return Instance{}, err
	}
	inst, ok := c.byID[id]
	if !ok {
		return Instance{}, fmt.Errorf("%w %q: add it to %s", ErrUnknown, id, c.path)
	}
	return inst, nil
}

// IDsAt lists the ids of the instances at host:port (host compared without
// case), sorted; none when the catalogue cannot be read.
func (c *Catalog) IDsAt(host string, port int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(); err != nil {
		return nil
	}
	var ids []string
	for id, inst := range c.byID {
		if inst.Port == port && strings.EqualFold(inst.Host, host) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (c *Catalog) refresh() error {
	st, err := os.Stat(c.path)
	if errors.Is(err, fs.ErrNotExist) {
		c.byID, c.loadErr, c.modTime, c.size = map[string]Instance{}, nil, time.Time{}, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("instance catalogue: %w", err)
	}
	if c.byID != nil && st.ModTime().Equal(c.modTime) && st.Size() == c.size {
		return c.loadErr
	}
	c.modTime, c.size = st.ModTime(), st.Size()
	c.byID, c.loadErr = load(c.path)
	return c.loadErr
}

func load(path string) (map[string]Instance, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return map[string]Instance{}, fmt.Errorf("instance catalogue: %w", err)
	}
	var list []Instance
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		return map[string]Instance{}, fmt.Errorf("instance catalogue %s is not a JSON array of instances: %w", path, err)
	}
	out := make(map[string]Instance, len(list))
	for i, inst := range list {
		switch {
		case inst.InstanceId == "":
			return map[string]Instance{}, fmt.Errorf("instance catalogue %s: entry %d has no InstanceId", path, i)
		case inst.Host == "" || inst.Port <= 0 || inst.Port > 65535:
			return map[string]Instance{}, fmt.Errorf("instance catalogue %s: %s needs Host and a Port in 1..65535", path, inst.InstanceId)
		case inst.Engine == "":
			return map[string]Instance{}, fmt.Errorf("instance catalogue %s: %s needs Engine (mysql, mariadb, percona, ...)", path, inst.InstanceId)
		}
		if _, dup := out[inst.InstanceId]; dup {
			return map[string]Instance{}, fmt.Errorf("instance catalogue %s: %s is listed twice", path, inst.InstanceId)
		}
		inst.Engine = strings.ToLower(inst.Engine)
		out[inst.InstanceId] = inst
	}
	return out, nil
}
