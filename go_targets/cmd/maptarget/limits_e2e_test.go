package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/mapquake/mapquake/go_targets/proto/mapquake/v1"
)

// TestLimitsEndToEnd: the binary applies one value limit to both APIs, its
// request limit to gRPC messages, and refuses an absurd Content-Length at once.
func TestLimitsEndToEnd(t *testing.T) {
	p := start(t, "--store", "mutexmap", "--value-type", "[]byte",
		"--max-value-bytes", "1000", "--max-request-bytes", "10000", "--max-inflight-bytes", "20000")
	conn, err := grpc.NewClient(p.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pb.NewMapStoreClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	value := bytes.Repeat([]byte("v"), 1001)
	if _, err := c.Put(ctx, &pb.PutRequest{Key: "k", Value: value}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC value over --max-value-bytes: %v", err)
	}
	req, _ := http.NewRequest("PUT", "http://"+p.HTTPAddr+"/kv/k", bytes.NewReader(value))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("HTTP value over --max-value-bytes: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	batch := &pb.BatchPutRequest{}
	for i := range 12 {
		batch.Entries = append(batch.Entries, &pb.PutRequest{Key: fmt.Sprint(i), Value: value[:900]})
	}
	if _, err := c.BatchPut(ctx, batch); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("BatchPut over --max-request-bytes: %v", err)
	}

	hc, err := net.Dial("tcp", p.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	_, _ = hc.Write([]byte("PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n0123456789"))
	_ = hc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if line, err := bufio.NewReader(hc).ReadString('\n'); err != nil || !strings.Contains(line, "413") {
		t.Errorf("Content-Length 1e12 with 10 bytes: %q %v, want 413 at once", line, err)
	}
}
