// probe: a small static program for checking the dev node by hand and in tests.
//
//	probe echo WORDS...       prints WORDS and writes them as the container's termination message
//	probe tcp HOST:PORT...    connects to each address, reports it (and writes the termination
//	                          message); exits 1 if one is unreachable
//	probe sleep               waits for SIGTERM (a long-running Deployment pod)
//	probe serve-tcp HOST:PORT checks HOST:PORT every 2 s and stays running while it answers
//	probe pg HOST:PORT USER DB  sends a PostgreSQL startup message and reports whether the server
//	                          asks for authentication (pg_hba accepted the client) or refuses
//	probe kube-api            GETs /version from the API server with the pod's service account
//	                          token and CA (the in-cluster configuration every client library uses)
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

const terminationLog = "/dev/termination-log"

func terminationMessage(msg string) {
	// Absent outside Kubernetes (or with terminationMessagePath changed); that is fine.
	_ = os.WriteFile(terminationLog, []byte(msg), 0o644)
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

func waitForSignal() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe echo WORDS... | tcp HOST:PORT... | sleep | serve-tcp HOST:PORT | pg HOST:PORT USER DB | kube-api")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "echo":
		msg := strings.Join(os.Args[2:], " ")
		fmt.Println(msg)
		terminationMessage(msg)
	case "tcp":
		var report []string
		failed := false
		for _, addr := range os.Args[2:] {
			if err := dial(addr); err != nil {
				failed = true
				report = append(report, fmt.Sprintf("%s unreachable: %v", addr, err))
			} else {
				report = append(report, addr+" reachable")
			}
		}
		msg := strings.Join(report, "\n")
		fmt.Println(msg)
		terminationMessage(msg)
		if failed {
			os.Exit(1)
		}
	case "sleep":
		fmt.Println("sleeping until SIGTERM")
		waitForSignal()
	case "serve-tcp":
		addr := os.Args[2]
		go func() {
			for {
				if err := dial(addr); err != nil {
					fmt.Fprintf(os.Stderr, "%s unreachable: %v\n", addr, err)
					terminationMessage(err.Error())
					os.Exit(1)
				}
				time.Sleep(2 * time.Second)
			}
		}()
		fmt.Printf("%s reachable; checking every 2 s\n", addr)
		waitForSignal()
	case "pg":
		report(pgStartup(os.Args[2], os.Args[3], os.Args[4]))
	case "kube-api":
		report(kubeAPIVersion())
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// report prints the outcome, writes it as the termination message and exits 1 on error.
func report(msg string, err error) {
	if err != nil {
		msg = "error: " + err.Error()
	}
	fmt.Println(msg)
	terminationMessage(msg)
	if err != nil {
		os.Exit(1)
	}
}

func pgStartup(addr, user, db string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	body := []byte{0, 3, 0, 0} // protocol 3.0
	for _, kv := range []string{"user", user, "database", db} {
		body = append(append(body, kv...), 0)
	}
	body = append(body, 0)
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	if _, err := c.Write(append(msg, body...)); err != nil {
		return "", err
	}
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(c, hdr); err != nil {
		return "", err
	}
	rest := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
	if _, err := io.ReadFull(c, rest); err != nil {
		return "", err
	}
	switch hdr[0] {
	case 'R':
		return fmt.Sprintf("PostgreSQL at %s accepted the client and asks for authentication (type %d)",
			addr, binary.BigEndian.Uint32(rest)), nil
	case 'E':
		return "", fmt.Errorf("PostgreSQL at %s refused: %s", addr, strings.ReplaceAll(string(rest), "\x00", " "))
	default:
		return "", fmt.Errorf("unexpected PostgreSQL message %q", hdr[0])
	}
}

func kubeAPIVersion() (string, error) {
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"
	token, err := os.ReadFile(sa + "token")
	if err != nil {
		return "", err
	}
	ca, err := os.ReadFile(sa + "ca.crt")
	if err != nil {
		return "", err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + net.JoinHostPort(os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")) + "/version"
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return fmt.Sprintf("%s: %s", url, strings.Join(strings.Fields(string(b)), " ")), nil
}
