package metrics

import (
	"testing"
	"time"
)

// Made-up actions never make series of their own: however many a client
// calls, they count as one "other".
func TestActionLabelsAreBounded(t *testing.T) {
	m := New()
	m.KnownActions([]string{"DescribeMigrateJobs"})
	m.ObserveRequest("DescribeMigrateJobs", "", time.Millisecond)
	for _, a := range []string{"Foo1", "Foo2", "", "DescribeMigrateJobs2"} {
		m.ObserveRequest(a, "InvalidAction", time.Millisecond)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "opendts_api_requests_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "action" {
					seen[l.GetValue()] += s.GetCounter().GetValue()
				}
			}
		}
	}
	if len(seen) != 2 || seen["DescribeMigrateJobs"] != 1 || seen["other"] != 4 {
		t.Errorf("series by action: %v", seen)
	}
}

// A node of a cluster labels every series with its name, Go's and the
// process's own included, so that the nodes scraped into one Prometheus
// stay apart; a single server adds no label.
func TestNodeLabel(t *testing.T) {
	for _, node := range []string{"n1", ""} {
		m := ForNode(node)
		m.ObserveRequest("DescribeMigrateJobs", "", time.Millisecond)
		m.AppliedRows("dts-x", 3)
		families, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(families) < 5 {
			t.Fatalf("only %d families", len(families))
		}
		for _, f := range families {
			for _, s := range f.GetMetric() {
				got := ""
				for _, l := range s.GetLabel() {
					if l.GetName() == "node" {
						got = l.GetValue()
					}
				}
				if got != node {
					t.Errorf("node %q: %s has node label %q", node, f.GetName(), got)
				}
			}
		}
	}
}
