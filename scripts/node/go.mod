// The real node's own programs (scripts/ensure-node builds them static, stdlib only): the test app
// and pause images, the image writer and the load generator.
module platform.local/node

go 1.24
