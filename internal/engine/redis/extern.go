package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Write modes of the target (ExternParams "WriteMode").
const (
	// writeNormal: the selected databases of the target must be empty.
	writeNormal = "normal"
	// writeOverwrite: keys of the target are replaced by the source's;
	// other keys stay.
	writeOverwrite = "overwrite"
	// writeClear: the selected databases of the target are emptied first.
	writeClear = "clearData"
)

// externParams is MigrateOption.ExternParams for Redis: the cloud's keys
// for the replication link (sizes in MB, times in seconds) and opendts's
// WriteMode.
type externParams struct {
	HardLimitMB, SoftLimitMB, PersistSec int
	BacklogMB, TimeoutSec                int
	WriteMode                            string
}

// parseExtern reads ExternParams: a JSON object, or the cloud's list of
// {"Key":..,"Value":..}; numbers may be given as text.
func parseExtern(text string) (externParams, error) {
	p := externParams{WriteMode: writeNormal}
	text = strings.TrimSpace(text)
	if text == "" || text == "[]" || text == "{}" {
		return p, nil
	}
	raw := map[string]any{}
	if strings.HasPrefix(text, "[") {
		var list []struct {
			Key   string
			Value any
		}
		if err := json.Unmarshal([]byte(text), &list); err != nil {
			return p, fmt.Errorf("ExternParams: %w", err)
		}
		for _, kv := range list {
			raw[kv.Key] = kv.Value
		}
	} else if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return p, fmt.Errorf("ExternParams: %w", err)
	}
	num := func(key string, dst *int) error {
		v, ok := raw[key]
		if !ok {
			return nil
		}
		delete(raw, key)
		var n int
		switch x := v.(type) {
		case float64:
			n = int(x)
		case string:
			var err error
			if n, err = strconv.Atoi(x); err != nil {
				return fmt.Errorf("ExternParams %s must be a whole number, not %q", key, x)
			}
		default:
			return fmt.Errorf("ExternParams %s must be a number", key)
		}
		if n <= 0 {
			return fmt.Errorf("ExternParams %s must be positive, not %d", key, n)
		}
		*dst = n
		return nil
	}
	for key, dst := range map[string]*int{
		"ClientOutputBufferHardLimit":   &p.HardLimitMB,
		"ClientOutputBufferSoftLimit":   &p.SoftLimitMB,
		"ClientOutputBufferPersistTime": &p.PersistSec,
		"ReplBacklogSize":               &p.BacklogMB,
		"ReplTimeout":                   &p.TimeoutSec,
	} {
		if err := num(key, dst); err != nil {
			return p, err
		}
	}
	if v, ok := raw["WriteMode"]; ok {
		delete(raw, "WriteMode")
		s, _ := v.(string)
		switch s {
		case writeNormal, writeOverwrite, writeClear:
			p.WriteMode = s
		default:
			return p, fmt.Errorf("ExternParams WriteMode must be normal, overwrite or clearData, not %v", v)
		}
	}
	for k := range raw {
		return p, fmt.Errorf("ExternParams: unknown key %q for Redis (known: ClientOutputBufferHardLimit, ClientOutputBufferSoftLimit, ClientOutputBufferPersistTime, ReplBacklogSize, ReplTimeout, WriteMode)", k)
	}
	return p, nil
}

// defaultBacklogMB is the replication backlog opendts asks for when
// ExternParams does not say: after the RDB is applied, opendts resumes
// the stream by a partial resync, and the backlog must hold the writes
// made meanwhile (Redis's default of 1 MB holds a second of a busy
// source). It is raised only, never lowered, and restored afterwards.
const defaultBacklogMB = 256

// settings are the source's values opendts changes, by CONFIG name.
func (p externParams) settings(current map[string]string) map[string]string {
	out := map[string]string{}
	if p.HardLimitMB > 0 || p.SoftLimitMB > 0 || p.PersistSec > 0 {
		hard, soft, persist := "256mb", "64mb", "60"
		if f := replicaLimit(current["client-output-buffer-limit"]); len(f) == 3 {
			hard, soft, persist = f[0], f[1], f[2]
		}
		if p.HardLimitMB > 0 {
			hard = strconv.Itoa(p.HardLimitMB) + "mb"
		}
		if p.SoftLimitMB > 0 {
			soft = strconv.Itoa(p.SoftLimitMB) + "mb"
		}
		if p.PersistSec > 0 {
			persist = strconv.Itoa(p.PersistSec)
		}
		out["client-output-buffer-limit"] = "replica " + hard + " " + soft + " " + persist
	}
	backlog := p.BacklogMB
	if backlog == 0 {
		cur, _ := strconv.ParseInt(current["repl-backlog-size"], 10, 64)
		if cur < defaultBacklogMB<<20 {
			backlog = defaultBacklogMB
		}
	}
	if backlog > 0 {
		out["repl-backlog-size"] = strconv.Itoa(backlog) + "mb"
	}
	if p.TimeoutSec > 0 {
		out["repl-timeout"] = strconv.Itoa(p.TimeoutSec)
	}
	return out
}

// replicaLimit picks the replica class from client-output-buffer-limit.
func replicaLimit(v string) []string {
	f := strings.Fields(v)
	for i := 0; i+3 < len(f); i += 4 {
		if f[i] == "slave" || f[i] == "replica" {
			return f[i+1 : i+4]
		}
	}
	return nil
}

var changedConfigs = []string{"client-output-buffer-limit", "repl-backlog-size", "repl-timeout"}

// applySource sets p's values on the source and returns the values they
// replace (to restore), given those saved by an earlier run (which win:
// they are the DBA's, the server's may be ours already).
func applySource(ctx context.Context, c *goredis.Client, p externParams, saved map[string]string) (map[string]string, error) {
	current := map[string]string{}
	for _, k := range changedConfigs {
		v, err := c.ConfigGet(ctx, k).Result()
		if err != nil {
			return nil, fmt.Errorf("CONFIG GET %s on the source: %w", k, err)
		}
		current[k] = v[k]
	}
	want := p.settings(current)
	orig := map[string]string{}
	for k := range want {
		if v, ok := saved[k]; ok {
			orig[k] = v
		} else {
			orig[k] = current[k]
		}
	}
	for k, v := range want {
		if err := c.ConfigSet(ctx, k, v).Err(); err != nil {
			return orig, fmt.Errorf("CONFIG SET %s on the source (ExternParams): %w", k, err)
		}
	}
	return orig, nil
}

// restoreSource puts the DBA's values back (client-output-buffer-limit as
// CONFIG GET gave it: every class at once, which CONFIG SET takes).
func restoreSource(ctx context.Context, c *goredis.Client, orig map[string]string) error {
	for k, v := range orig {
		if err := c.ConfigSet(ctx, k, v).Err(); err != nil {
			return fmt.Errorf("restore %s on the source: %w", k, err)
		}
	}
	return nil
}
