// The real node's own programs (scripts/ensure-node builds them static): the test app and pause
// images, the image writer and the load generator. Only the test app has dependencies: the
// PostgreSQL and Redis drivers of its /deps check and migration (pure Go, so still static).
module platform.local/node

go 1.26.0

require (
	github.com/jackc/pgx/v5 v5.13.0
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/sys v0.48.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)
