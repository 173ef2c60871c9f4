// platform-testapp: the app of the real-node tests (image localhost/platform-testapp:<tag>). One
// static binary serves every role the program gives an app's image:
//
//	platform-testapp [serve]   HTTP on $PORT (8080): GET / → 200 "version=$VERSION …" with X-Version
//	                           and X-Pod headers; /healthz (also /readyz, /livez) → 200; GET /deps →
//	                           200 only when SELECT 1 on $DATABASE_URL and PING on $REDIS_HOST:$REDIS_PORT
//	                           (password $REDIS_PASSWORD) succeed, 503 otherwise (deps.go)
//	platform-testapp smoke [url]   GET $SMOKE_TEST_URL (or url): exit 0 on 200 (the smoke-test Job)
//	platform-testapp resolve NAME…  look names up with the pod's resolver (the cluster DNS); exit 1 on a miss
//	platform-testapp migrate …     the migration Job (/app/bin/migrate is a link): with $DATABASE_URL it
//	                           records $VERSION in the table platform_testapp_migrations; else prints
//	curl [--fail] [--max-time s] [--retry n] [--retry-delay s] … URL   (a link: the program's default
//	                           smoke test runs `curl …`, so this image can also be images.smokeTest)
//
// Switches a test flips through the environment: FAIL_READINESS=1 (health answers 503 forever),
// ERROR_RATE=0..1 (that fraction of / answers 500), FAIL_MIGRATION=1, FAIL_SMOKE=1. GET /?sleep=ms
// holds a request (≤ 10 s), to have requests in flight during a shutdown.
//
// SIGTERM: the listener closes, requests in flight finish (keep-alive connections are closed after
// their current answer), then the process exits; the pod's preStop sleep runs before this.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stdout, "%s platform-testapp: %s\n", time.Now().UTC().Format("15:04:05.000"), fmt.Sprintf(format, a...))
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	args := os.Args[1:]
	mode := filepath.Base(os.Args[0])
	if mode == "platform-testapp" || mode == "testapp" {
		mode = "serve"
		if len(args) > 0 {
			mode, args = args[0], args[1:]
		}
	}
	switch mode {
	case "serve":
		os.Exit(serve())
	case "smoke":
		os.Exit(smoke(args))
	case "migrate":
		os.Exit(migrate(args))
	case "curl":
		os.Exit(curl(args))
	case "resolve":
		os.Exit(resolve(args))
	default:
		fmt.Fprintf(os.Stderr, "platform-testapp: unknown command %q (serve, smoke, migrate, resolve)\n", mode)
		os.Exit(2)
	}
}

func serve() int {
	version := env("VERSION", "dev")
	pod, _ := os.Hostname()
	failReady := os.Getenv("FAIL_READINESS") == "1"
	errorRate, _ := strconv.ParseFloat(env("ERROR_RATE", "0"), 64)
	var draining atomic.Bool

	mux := http.NewServeMux()
	health := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version", version)
		if failReady {
			http.Error(w, "not ready (FAIL_READINESS=1) version="+version, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ok version=%s\n", version)
	}
	for _, p := range []string{"/healthz", "/readyz", "/livez"} {
		mux.HandleFunc(p, health)
	}
	mux.HandleFunc("/deps", deps(version))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version", version)
		w.Header().Set("X-Pod", pod)
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		if ms, err := strconv.Atoi(r.URL.Query().Get("sleep")); err == nil && ms > 0 {
			time.Sleep(time.Duration(min(ms, 10000)) * time.Millisecond)
		}
		if errorRate > 0 && rand.Float64() < errorRate {
			http.Error(w, fmt.Sprintf("injected error (ERROR_RATE=%g) version=%s pod=%s", errorRate, version, pod), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello from %s version=%s\n", pod, version)
	})

	addr := ":" + env("PORT", "8080")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		logf("cannot listen on %s: %v", addr, err)
		return 1
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan int, 1)
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		s := <-sigs
		draining.Store(true)
		logf("%v: closing the listener, finishing requests in flight", s)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			logf("shutdown: %v", err)
			done <- 1
			return
		}
		logf("stopped")
		done <- 0
	}()
	logf("version=%s listening on %s (FAIL_READINESS=%t ERROR_RATE=%g)", version, addr, failReady, errorRate)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		logf("serve: %v", err)
		return 1
	}
	return <-done
}

// get: one GET; the status code, or an error.
func get(raw string, timeout time.Duration) (int, string, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(raw)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

func smoke(args []string) int {
	target := os.Getenv("SMOKE_TEST_URL")
	if len(args) > 0 {
		target = args[0]
	}
	if target == "" {
		fmt.Fprintln(os.Stderr, "smoke: no URL (set SMOKE_TEST_URL)")
		return 2
	}
	if os.Getenv("FAIL_SMOKE") == "1" {
		fmt.Fprintln(os.Stderr, "smoke: failing on purpose (FAIL_SMOKE=1)")
		return 1
	}
	attempts, _ := strconv.Atoi(env("SMOKE_ATTEMPTS", "5"))
	for i := 1; ; i++ {
		code, body, err := get(target, 5*time.Second)
		if err == nil && code == http.StatusOK {
			fmt.Printf("smoke: GET %s → 200 %s\n", target, body)
			return 0
		}
		fmt.Fprintf(os.Stderr, "smoke: GET %s attempt %d/%d: status %d %v %s\n", target, i, attempts, code, err, body)
		if i >= attempts {
			return 1
		}
		time.Sleep(2 * time.Second)
	}
}

func migrate(args []string) int {
	v := env("VERSION", "dev")
	if os.Getenv("FAIL_MIGRATION") == "1" {
		fmt.Fprintf(os.Stderr, "migrate %s: failing on purpose (FAIL_MIGRATION=1) version=%s\n", strings.Join(args, " "), v)
		return 1
	}
	if os.Getenv("DATABASE_URL") != "" {
		if err := migrateDatabase(args, v); err != nil {
			fmt.Fprintf(os.Stderr, "migrate %s: version=%s: %v\n", strings.Join(args, " "), v, err)
			return 1
		}
		fmt.Printf("migrate %s: version=%s recorded in platform_testapp_migrations\n", strings.Join(args, " "), v)
		return 0
	}
	fmt.Printf("migrate %s: version=%s done\n", strings.Join(args, " "), v)
	return 0
}

// curl: the subset of curl's options the program's default smoke test passes.
func curl(args []string) int {
	var target string
	fail, retries, delay, maxTime := false, 0, time.Second, 30*time.Second
	num := func(i int) float64 {
		if i >= len(args) {
			return 0
		}
		f, _ := strconv.ParseFloat(args[i], 64)
		return f
	}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "--fail", "-f":
			fail = true
		case "--max-time", "-m":
			i++
			maxTime = time.Duration(num(i) * float64(time.Second))
		case "--retry":
			i++
			retries = int(num(i))
		case "--retry-delay":
			i++
			delay = time.Duration(num(i) * float64(time.Second))
		case "-o", "--output", "-w", "--write-out", "-H", "--header", "-X", "--request", "--connect-timeout":
			i++
		default:
			if !strings.HasPrefix(a, "-") {
				target = a
			}
		}
	}
	if target == "" {
		fmt.Fprintln(os.Stderr, "curl: no URL specified")
		return 2
	}
	for attempt := 0; ; attempt++ {
		code, body, err := get(target, maxTime)
		if err == nil && (code < 400 || !fail) {
			fmt.Println(body)
			return 0
		}
		if attempt >= retries {
			if err != nil {
				fmt.Fprintf(os.Stderr, "curl: %v\n", err)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return 28
				}
				return 7
			}
			fmt.Fprintf(os.Stderr, "curl: (22) The requested URL returned error: %d\n", code)
			return 22
		}
		time.Sleep(delay)
	}
}
