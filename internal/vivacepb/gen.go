// Package vivacepb holds Vivace's protobuf messages and gRPC services.
package vivacepb

//go:generate sh -c "PATH=$(go env GOPATH)/bin:$HOME/.cache/vivace/bin:$PATH protoc -I . -I otlp --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative vivace.proto tempo.proto"
