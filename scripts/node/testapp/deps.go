package main

// The app's check of its dependencies, as a real app would do it: the maintained drivers (pgx,
// go-redis), the connection settings the program injects from the data services' Secrets
// (DATABASE_URL; REDIS_HOST, REDIS_PORT, REDIS_PASSWORD), names resolved by the cluster's DNS.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

type check struct {
	OK    bool    `json:"ok"`
	MS    float64 `json:"ms"`
	Error string  `json:"error,omitempty"`
}

// checkPostgres: a new connection with $DATABASE_URL and SELECT 1 (authentication included).
func checkPostgres(ctx context.Context) error {
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		return errors.New("DATABASE_URL is not set")
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

func redisClient() (*redis.Client, error) {
	host := os.Getenv("REDIS_HOST")
	if host == "" {
		return nil, errors.New("REDIS_HOST is not set")
	}
	return redis.NewClient(&redis.Options{
		Addr:     net.JoinHostPort(host, env("REDIS_PORT", "6379")),
		Password: os.Getenv("REDIS_PASSWORD"),
		// one connection per check: each PING proves the password again
		PoolSize: 1, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second,
	}), nil
}

// checkRedis: PING on a new connection with the injected password.
func checkRedis(ctx context.Context) error {
	c, err := redisClient()
	if err != nil {
		return err
	}
	defer c.Close()
	pong, err := c.Ping(ctx).Result()
	if err != nil {
		return err
	}
	if pong != "PONG" {
		return fmt.Errorf("PING answered %q", pong)
	}
	return nil
}

func timed(ctx context.Context, f func(context.Context) error) check {
	t := time.Now()
	err := f(ctx)
	c := check{OK: err == nil, MS: float64(time.Since(t).Microseconds()) / 1000}
	if err != nil {
		c.Error = err.Error()
	}
	return c
}

// deps: GET /deps → 200 only when both answer; 503 otherwise, with each one's result.
func deps(version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		result := map[string]check{"postgres": timed(ctx, checkPostgres), "redis": timed(ctx, checkRedis)}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Version", version)
		if !result["postgres"].OK || !result["redis"].OK {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(result)
	}
}

// migrateDatabase: with $DATABASE_URL, the migration is real: it records this version in a table
// of its own (created on the first run), so a test can see that the Job ran against the database.
func migrateDatabase(args []string, version string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS platform_testapp_migrations (
		version text PRIMARY KEY, command text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `INSERT INTO platform_testapp_migrations (version, command) VALUES ($1, $2)
		ON CONFLICT (version) DO NOTHING`, version, strings.Join(args, " "))
	return err
}

// resolve: `platform-testapp resolve NAME…` looks each name up with the pod's resolver
// (/etc/resolv.conf the kubelet wrote: the cluster DNS, its search path and ndots) and prints
// "NAME IP[,IP…]" or "NAME error: …" per name; exit 1 when any fails. The lines also go to
// /dev/termination-log, so the kubelet reports them in the pod's status.
func resolve(names []string) int {
	if len(names) == 0 {
		fmt.Fprintln(os.Stderr, "resolve: no name given")
		return 2
	}
	var lines []string
	code := 0
	r := &net.Resolver{PreferGo: true}
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t := time.Now()
		ips, err := r.LookupHost(ctx, n)
		cancel()
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s error (%d ms): %v", n, time.Since(t).Milliseconds(), err))
			code = 1
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s", n, strings.Join(ips, ",")))
	}
	out := strings.Join(lines, "\n") + "\n"
	fmt.Print(out)
	_ = os.WriteFile("/dev/termination-log", []byte(out), 0o644)
	return code
}
