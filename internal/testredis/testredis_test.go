package testredis

import (
	"context"
	"testing"
)

func TestStandaloneAndCluster(t *testing.T) {
	s := Start(t, "--requirepass", "pw")
	if v := s.Do(t, "PING"); v != "PONG" {
		t.Fatalf("PING = %v", v)
	}
	c := StartCluster(t)
	cl := c.Client(t)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c", "d"} {
		if err := cl.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := cl.Get(ctx, "c").Val(); got != "c" {
		t.Fatalf("get c = %q", got)
	}
}
