// mooc-cri: a minimal CRI client for the dev node (Debian has no crictl). It is built by
// dev/k8s/build-binaries.sh in the same module graph as kubelet (k8s.io/cri-api, grpc).
//
//	mooc-cri SOCKET ps       lists pod sandboxes and containers
//	mooc-cri SOCKET clean    stops and removes every pod sandbox (tears down its network through
//	                         CNI and its mounts), as kubelet would; used by dev/down
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mooc-cri SOCKET ps|clean")
		os.Exit(2)
	}
	conn, err := grpc.NewClient("unix://"+os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		fail(err)
	}
	switch os.Args[2] {
	case "ps":
		ctrs, err := rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			fail(err)
		}
		for _, p := range pods.Items {
			fmt.Printf("pod %.13s %s/%s %s\n", p.Id, p.Metadata.GetNamespace(), p.Metadata.GetName(), p.State)
			for _, c := range ctrs.Containers {
				if c.PodSandboxId == p.Id {
					fmt.Printf("  container %.13s %s %s %s\n", c.Id, c.Metadata.GetName(), c.State, c.Image.GetImage())
				}
			}
		}
	case "clean":
		failed := false
		for _, p := range pods.Items {
			name := p.Metadata.GetNamespace() + "/" + p.Metadata.GetName()
			if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
				fmt.Fprintf(os.Stderr, "stopping pod %s: %v\n", name, err)
				failed = true
				continue
			}
			if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
				fmt.Fprintf(os.Stderr, "removing pod %s: %v\n", name, err)
				failed = true
			}
		}
		if failed {
			os.Exit(1)
		}
	default:
		fail(fmt.Errorf("unknown command %q", os.Args[2]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mooc-cri:", err)
	os.Exit(1)
}
