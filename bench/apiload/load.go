package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// query is one kind of DescribeMigrateJobs request in the mix.
type query struct {
	name string
	body func(r *rand.Rand) []byte
}

func mix(n int) []query {
	js := func(v any) []byte { b, _ := json.Marshal(v); return b }
	return []query{
		{"first-page", func(*rand.Rand) []byte { return []byte(`{"Limit":20}`) }},
		{"job-id", func(r *rand.Rand) []byte { return js(map[string]any{"JobId": benchJobID(r.IntN(n))}) }},
		// bench-job-0012 matches up to ten names (00120..00129).
		{"job-name", func(r *rand.Rand) []byte {
			return js(map[string]any{"JobName": fmt.Sprintf("bench-job-%04d", r.IntN(max(1, n/10)))})
		}},
		// The 2018-03-30 API has no Status filter: ordering by Status is
		// the status query a cloud script can send.
		{"order-status", func(*rand.Rand) []byte { return []byte(`{"Order":"Status","OrderSeq":"ASC","Limit":20}`) }},
		{"tag", func(r *rand.Rand) []byte {
			return js(map[string]any{"TagFilters": []map[string]any{{"TagKey": "team", "TagValue": []string{"t" + strconv.Itoa(r.IntN(20))}}}, "Limit": 20})
		}},
		// A deep page: 90 % of the way down.
		{"deep-offset", func(*rand.Rand) []byte { return js(map[string]any{"Offset": n * 9 / 10, "Limit": 20}) }},
	}
}

type sample struct {
	kind    int
	latency time.Duration
	code    string
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "host:port of opendts serve")
	credFile := fs.String("credentials", "", "file of `SecretId SecretKey` lines; requests go round-robin over them")
	n := fs.Int("jobs", 10000, "jobs stored (ids and offsets are chosen from it)")
	rates := fs.String("rates", "500,1000,2000", "requests per second to send, comma-separated")
	dur := fs.Duration("duration", 10*time.Second, "time at each rate")
	pid := fs.Int("pid", 0, "opendts serve's pid, for CPU seconds and peak RSS")
	findMax := fs.Bool("find-max", false, "after -rates, step the rate (up from the last if it held, else down) to find the highest whose p99 stays under -p99-limit")
	step := fs.Int("step", 500, "rate step of -find-max")
	limit := fs.Duration("p99-limit", 50*time.Millisecond, "p99 that ends -find-max")
	label := fs.String("label", "", "printed in front of every line")
	_ = fs.Parse(args)
	creds, err := readCredentials(*credFile)
	if err != nil {
		return err
	}
	c := newCaller(*endpoint)
	qs := mix(*n)
	// Warm the connections and the server.
	runRate(c, creds, qs, 200, 2*time.Second)
	fmt.Printf("%-8s %6s %7s %8s %8s %8s %8s %7s %7s %5s  %s\n", "jobs", "rate", "sent", "p50", "p99", "max", "achieved", "cpu_s", "rss_MB", "psi", "errors / p99 by query")
	run := func(rate int) time.Duration {
		resetPeak(*pid)
		cpu0 := cpuSeconds(*pid)
		samples, elapsed := runRate(c, creds, qs, rate, *dur)
		cpu := cpuSeconds(*pid) - cpu0
		p50, p99, mx := percentiles(samples)
		errs := map[string]int{}
		byKind := make([][]sample, len(qs))
		for _, s := range samples {
			if s.code != "" {
				errs[s.code]++
			}
			byKind[s.kind] = append(byKind[s.kind], s)
		}
		var notes []string
		for code, k := range errs {
			notes = append(notes, fmt.Sprintf("%s=%d", code, k))
		}
		sort.Strings(notes)
		if len(notes) == 0 {
			notes = append(notes, "no errors")
		}
		for i, q := range qs {
			_, kp99, _ := percentiles(byKind[i])
			notes = append(notes, fmt.Sprintf("%s=%s", q.name, ms(kp99)))
		}
		fmt.Printf("%-8s %6d %7d %8s %8s %8s %8.0f %7.2f %7.1f %5s  %s\n", *label, rate, len(samples), ms(p50), ms(p99), ms(mx),
			float64(len(samples))/elapsed.Seconds(), cpu, peakRSS(*pid), cpuPressure(), strings.Join(notes, " "))
		return p99
	}
	best, lastRate, lastOK := 0, 0, false
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			return fmt.Errorf("bad rate %q", f)
		}
		lastRate, lastOK = r, run(r) <= *limit
		if lastOK {
			best = max(best, r)
		}
	}
	if *findMax {
		if lastOK {
			// Up from the last rate until p99 passes the limit.
			for r := lastRate + *step; r <= 20000; r += *step {
				if run(r) > *limit {
					break
				}
				best = r
			}
		} else {
			// Down from the last rate to the first that holds.
			for r := lastRate - *step; r > best; r -= *step {
				if run(r) <= *limit {
					best = r
					break
				}
			}
		}
		fmt.Printf("%-8s highest rate with p99 <= %s: %d requests/s (in steps of %d)\n", *label, *limit, best, *step)
	}
	return nil
}

// runRate sends requests at rate for d, open loop: each request leaves at
// its scheduled time whether or not the earlier ones were answered, and its
// latency counts from that time.
func runRate(c *caller, creds []cred, qs []query, rate int, d time.Duration) ([]sample, time.Duration) {
	total := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	out := make([]sample, total)
	var wg sync.WaitGroup
	start := time.Now()
	r := rand.New(rand.NewPCG(uint64(rate), 1))
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		k := i % len(qs)
		body := qs[k].body(r)
		cr := creds[i%len(creds)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			code, _, err := c.call(ctx, cr, "DescribeMigrateJobs", body)
			if err != nil {
				code = "transport: " + firstWord(err.Error())
			}
			out[i] = sample{kind: k, latency: time.Since(at), code: code}
		}()
	}
	wg.Wait()
	return out, time.Since(start)
}

func firstWord(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return strings.ReplaceAll(s, " ", "_")
}

func percentiles(s []sample) (p50, p99, mx time.Duration) {
	if len(s) == 0 {
		return 0, 0, 0
	}
	l := make([]time.Duration, len(s))
	for i, x := range s {
		l[i] = x.latency
	}
	slices.Sort(l)
	at := func(p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
	return at(0.50), at(0.99), l[len(l)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

// resetPeak resets the process's peak RSS (VmHWM), so each rate reports its
// own.
func resetPeak(pid int) {
	if pid != 0 {
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	}
}

func peakRSS(pid int) float64 {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuPressure is the machine's CPU pressure over the last 10 s (the share
// of time some runnable task waited for a CPU, /proc/pressure/cpu): the
// other work on the machine the figures shared it with.
func cpuPressure() string {
	data, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "?"
	}
	for _, f := range strings.Fields(string(data)) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			return v + "%"
		}
	}
	return "?"
}
