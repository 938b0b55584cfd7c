// cni-driver runs CNI operations through libcni, the library container runtimes use, so the
// plugin is exercised exactly as containerd or CRI-O would exercise it (config injection,
// prevResult chaining, result cache, reverse DEL, VERSION probe).
//
// Build (Debian: golang-go golang-github-appc-cni-dev):
//   GO111MODULE=off GOPATH=/usr/share/gocode go build -o cni-driver main.go
// Usage: CNI_PATH=dir1:dir2 cni-driver add|check|del|validate CONFLIST CONTAINER_ID NETNS IFNAME CACHE_DIR
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	if len(os.Args) != 7 {
		fmt.Fprintln(os.Stderr, "usage: cni-driver add|check|del|validate CONFLIST CONTAINER_ID NETNS IFNAME CACHE_DIR")
		os.Exit(2)
	}
	verb, file, id, netns, ifname, cache := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6]
	list, err := libcni.ConfListFromFile(file)
	if err != nil {
		fail(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cache, nil)
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: ifname}
	ctx := context.Background()
	switch verb {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		out, _ := json.Marshal(result)
		fmt.Println(string(out))
	case "check":
		if err := cni.CheckNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "del":
		if err := cni.DelNetworkList(ctx, list, rt); err != nil {
			fail(err)
		}
	case "validate":
		if _, err := cni.ValidateNetworkList(ctx, list); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown verb %q", verb))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cni-driver:", err)
	os.Exit(1)
}
