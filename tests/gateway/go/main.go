// A Greeter written in Go with grpc-go: an upstream of the gateway that Twofold
// did not write (tests/gateway/test_go_upstream.py). It serves server
// reflection, so the gateway needs no .proto, and prints its port.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	greeterv1 "twofold.example/greeter/v1"
)

type greeter struct {
	greeterv1.UnimplementedGreeterServer
}

func (greeter) SayHello(ctx context.Context, req *greeterv1.HelloRequest) (*greeterv1.HelloReply, error) {
	if strings.TrimSpace(req.GetName()) == "" {
		st, err := status.New(codes.InvalidArgument, "a name, please").WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: "name", Description: "must not be blank"},
			},
		})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	}
	return &greeterv1.HelloReply{Message: "Hello from Go, " + req.GetName()}, nil
}

func (greeter) SayHellos(req *greeterv1.HelloRequest, stream greeterv1.Greeter_SayHellosServer) error {
	for i := int32(0); i < req.GetTimes(); i++ {
		reply := &greeterv1.HelloReply{Message: fmt.Sprintf("Hello #%d from Go, %s", i+1, req.GetName())}
		if err := stream.Send(reply); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	greeterv1.RegisterGreeterServer(server, greeter{})
	reflection.Register(server)
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
