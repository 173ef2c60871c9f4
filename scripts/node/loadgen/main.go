// loadgen: fixed-rate HTTP load against the real node, for measuring failed requests during an
// operator action. It sends only to 127.0.0.0/8 (a NodePort kube-proxy serves on loopback): any
// other target is refused, redirects are not followed, proxies are ignored and every dial is checked.
// It is bounded: at most 10 minutes and 200,000 requests.
//
//	loadgen -url http://127.0.0.1:30080/ [-rate 200] [-duration 30s] [-out result.json] [-keepalive]
//
// It sends until -duration passes or SIGTERM/SIGINT arrives, waits for the requests in flight (at
// most -timeout), then writes the result as JSON (to -out, atomically, or stdout) and exits 0.
// Every answer other than 200 counts as failed. By default each request opens a new TCP connection,
// so kube-proxy balances each one. Times are ms since the first request, and epoch ms.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"
)

const (
	maxDuration = 10 * time.Minute
	maxRequests = 200000
	maxRate     = 2000
	maxInFlight = 4096
)

var loopback = &net.IPNet{IP: net.IPv4(127, 0, 0, 0), Mask: net.CIDRMask(8, 32)}

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
	os.Exit(2)
}

// loopbackTarget: the URL if its host is an address in 127.0.0.0/8 (or "localhost", dialled as
// 127.0.0.1), else the reason it is refused.
func loopbackTarget(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-url must be an http:// URL (got %q)", raw)
	}
	h := u.Hostname()
	if h == "localhost" {
		u.Host = net.JoinHostPort("127.0.0.1", u.Port())
		if u.Port() == "" {
			u.Host = "127.0.0.1"
		}
		return u, nil
	}
	ip := net.ParseIP(h)
	if ip == nil || !loopback.Contains(ip) {
		return nil, fmt.Errorf("refusing target %q: loadgen sends only to 127.0.0.0/8 (a NodePort served on loopback)", h)
	}
	return u, nil
}

type seen struct {
	Count        int   `json:"count"`
	FirstMs      int64 `json:"firstMs"`
	LastMs       int64 `json:"lastMs"`
	FirstEpochMs int64 `json:"firstEpochMs"`
	LastEpochMs  int64 `json:"lastEpochMs"`
}

type second struct {
	S        int            `json:"s"`
	Sent     int            `json:"sent"`
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	Versions map[string]int `json:"versions,omitempty"`
}

type sample struct {
	Ms    int64  `json:"ms"`
	Kind  string `json:"kind"`
	Error string `json:"error"`
}

type result struct {
	URL          string           `json:"url"`
	Rate         int              `json:"rate"`
	KeepAlive    bool             `json:"keepAlive"`
	TimeoutMs    int64            `json:"timeoutMs"`
	StartEpochMs int64            `json:"startEpochMs"`
	DurationMs   int64            `json:"durationMs"`
	StoppedBy    string           `json:"stoppedBy"`
	Sent         int              `json:"sent"`
	OK           int              `json:"ok"`
	Failed       int              `json:"failed"`
	Failures     map[string]int   `json:"failures"`
	FailedWindow *seen            `json:"failedWindow,omitempty"`
	Versions     map[string]*seen `json:"versions"`
	Pods         map[string]int   `json:"pods"`
	LatencyMs    map[string]int64 `json:"latencyMs"`
	Samples      []sample         `json:"failureSamples"`
	Timeline     []*second        `json:"timeline"`
}

// kind: a failed request's class.
func kind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}

func main() {
	rawURL := flag.String("url", "", "target, http://127.x.x.x:<port>/path")
	rate := flag.Int("rate", 200, fmt.Sprintf("requests per second (≤ %d)", maxRate))
	duration := flag.Duration("duration", 30*time.Second, fmt.Sprintf("how long to send (≤ %s); SIGTERM stops earlier", maxDuration))
	maxReq := flag.Int("max-requests", 0, fmt.Sprintf("stop after this many requests (default rate × duration; ≤ %d)", maxRequests))
	timeout := flag.Duration("timeout", 2*time.Second, "per-request timeout (connect to last byte)")
	keepAlive := flag.Bool("keepalive", false, "reuse connections (default: a new TCP connection per request)")
	out := flag.String("out", "", "write the JSON result here (default stdout)")
	flag.Parse()

	target, err := loopbackTarget(*rawURL)
	if err != nil {
		die("%v", err)
	}
	if *rate < 1 || *rate > maxRate {
		die("-rate must be 1..%d (got %d)", maxRate, *rate)
	}
	if *duration <= 0 || *duration > maxDuration {
		die("-duration must be > 0 and ≤ %s (got %s)", maxDuration, *duration)
	}
	if *timeout <= 0 || *timeout > 30*time.Second {
		die("-timeout must be > 0 and ≤ 30s (got %s)", *timeout)
	}
	limit := int(float64(*rate) * duration.Seconds())
	if *maxReq > 0 && *maxReq < limit {
		limit = *maxReq
	}
	limit = min(max(limit, 1), maxRequests)

	dialer := &net.Dialer{Timeout: *timeout}
	transport := &http.Transport{
		Proxy: nil, // never through a proxy, whatever the environment says
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if ip := net.ParseIP(host); err != nil || ip == nil || !loopback.Contains(ip) {
				return nil, fmt.Errorf("loadgen: refusing to dial %s (not 127.0.0.0/8)", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		DisableKeepAlives:   !*keepAlive,
		MaxIdleConnsPerHost: 256,
	}
	client := &http.Client{
		Transport:     transport,
		Timeout:       *timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	res := &result{URL: target.String(), Rate: *rate, KeepAlive: *keepAlive, TimeoutMs: timeout.Milliseconds(),
		Failures: map[string]int{}, Versions: map[string]*seen{}, Pods: map[string]int{}, Samples: []sample{}}
	var mu sync.Mutex
	var latencies []int64
	start := time.Now()
	res.StartEpochMs = start.UnixMilli()
	bucket := func(at time.Time) *second {
		s := int(at.Sub(start) / time.Second)
		for len(res.Timeline) <= s {
			res.Timeline = append(res.Timeline, &second{S: len(res.Timeline), Versions: map[string]int{}})
		}
		return res.Timeline[s]
	}
	mark := func(m map[string]*seen, key string, at time.Time) *seen {
		v := m[key]
		ms := at.Sub(start).Milliseconds()
		if v == nil {
			v = &seen{FirstMs: ms, FirstEpochMs: at.UnixMilli()}
			m[key] = v
		}
		v.Count++
		v.LastMs, v.LastEpochMs = ms, at.UnixMilli()
		return v
	}
	failed := map[string]*seen{}
	record := func(sent time.Time, version, pod, failKind, detail string) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		b := bucket(sent)
		latencies = append(latencies, now.Sub(sent).Milliseconds())
		if failKind != "" {
			res.Failed++
			b.Failed++
			res.Failures[failKind]++
			mark(failed, "all", now)
			if len(res.Samples) < 20 {
				res.Samples = append(res.Samples, sample{Ms: now.Sub(start).Milliseconds(), Kind: failKind, Error: detail})
			}
		} else {
			res.OK++
			b.OK++
		}
		if version != "" {
			b.Versions[version]++
			mark(res.Versions, version, now)
		}
		if pod != "" {
			res.Pods[pod]++
		}
	}

	one := func(sent time.Time) {
		resp, err := client.Get(target.String())
		if err != nil {
			record(sent, "", "", kind(err), err.Error())
			return
		}
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		v, pod := resp.Header.Get("X-Version"), resp.Header.Get("X-Pod")
		switch {
		case err != nil:
			record(sent, v, pod, kind(err), err.Error())
		case resp.StatusCode != http.StatusOK:
			record(sent, v, pod, fmt.Sprintf("http %d", resp.StatusCode), resp.Status)
		default:
			record(sent, v, pod, "", "")
		}
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	deadline := time.NewTimer(*duration)
	interval := time.Second / time.Duration(*rate)
	slots := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	closed := make(chan time.Time)
	close(closed)
	var due <-chan time.Time = closed
	fmt.Fprintf(os.Stderr, "loadgen: %d/s to %s for at most %s (%d requests), keepalive=%t\n", *rate, target, *duration, limit, *keepAlive)
	res.StoppedBy = "duration" // the last scheduled request of -duration
	if limit < int(float64(*rate)*duration.Seconds()) {
		res.StoppedBy = "max-requests"
	}
send:
	for i := 0; i < limit; i++ {
		next := start.Add(time.Duration(i) * interval)
		wait := due // behind schedule: send at once, but still see a stop
		if d := time.Until(next); d > 0 {
			wait = time.After(d)
		}
		select {
		case <-wait:
		case s := <-stop:
			res.StoppedBy = "signal " + s.String()
			break send
		case <-deadline.C:
			res.StoppedBy = "duration"
			break send
		}
		mu.Lock()
		res.Sent++
		bucket(next).Sent++
		mu.Unlock()
		select {
		case slots <- struct{}{}:
		default: // the client itself is saturated: count it, never block the schedule
			record(next, "", "", "client-saturated", "more than maxInFlight requests in flight")
			continue
		}
		wg.Add(1)
		go func(sent time.Time) {
			defer func() { <-slots; wg.Done() }()
			one(sent)
		}(time.Now())
	}
	wg.Wait()
	res.DurationMs = time.Since(start).Milliseconds()
	if w := failed["all"]; w != nil {
		res.FailedWindow = w
	}
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	res.LatencyMs = map[string]int64{}
	if n := len(latencies); n > 0 {
		res.LatencyMs = map[string]int64{"p50": latencies[n/2], "p99": latencies[n*99/100], "max": latencies[n-1]}
	}
	for _, b := range res.Timeline {
		if len(b.Versions) == 0 {
			b.Versions = nil
		}
	}

	data, _ := json.MarshalIndent(res, "", " ")
	if *out == "" {
		os.Stdout.Write(append(data, '\n'))
	} else {
		if err := os.WriteFile(*out+".tmp", data, 0o644); err != nil {
			die("%v", err)
		}
		if err := os.Rename(*out+".tmp", *out); err != nil {
			die("%v", err)
		}
	}
	vs := ""
	for v, s := range res.Versions {
		vs += fmt.Sprintf(" %s=%d", v, s.Count)
	}
	fmt.Fprintf(os.Stderr, "loadgen: sent=%d ok=%d failed=%d%s (%s after %dms)\n", res.Sent, res.OK, res.Failed, vs, res.StoppedBy, res.DurationMs)
}
