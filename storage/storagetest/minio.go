package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// userActions is all the harness user may do, on the harness's buckets only,
// so code passing tests with it needs no more rights in production.
var userActions = []string{
	"s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:DeleteObject",
	"s3:GetObjectTagging", "s3:PutObjectTagging",
}

// userPolicy is the name of the user's one canned policy.
const userPolicy = "vivace-rw"

// MinIO is a real MinIO server process started for one test.
type MinIO struct {
	Endpoint     string // 127.0.0.1:port, plain HTTP
	Region       string
	RootUser     string
	RootPassword string
	Bucket       string // the first bucket
	// A least-privilege user: userActions on Bucket and on buckets from
	// NewBucket, nothing else (it cannot create buckets or see others).
	AccessKey string
	SecretKey string

	root    *minio.Client
	admin   *madmin.AdminClient
	mu      sync.Mutex // guards buckets and the admin calls that rewrite the policy
	buckets []string
}

// StartMinIO starts a MinIO server for t, stopped in t.Cleanup, with one
// bucket and a least-privilege user for it (see MinIO). The binary is
// MinIOBinary(); without it the test is skipped, or fails when
// VIVACE_REQUIRE_MINIO=1. Each call starts its own server (a few seconds), so
// tests that can share one call it once in a parent test and use subtests,
// with NewBucket for an empty bucket each.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := MinIOBinary()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("VIVACE_REQUIRE_MINIO") == "1" {
			t.Fatalf("minio binary %s: %v (VIVACE_REQUIRE_MINIO=1; ./scripts/test installs it)", bin, err)
		}
		t.Skipf("minio binary %s not found: ./scripts/test installs it, or set VIVACE_MINIO", bin)
	}

	m := &MinIO{Region: "us-east-1", RootUser: "vivace-root", RootPassword: randHex(16)}
	// Another process may take a free port before MinIO binds it: retry.
	var err error
	for range 3 {
		if err = m.start(t, bin); err == nil {
			break
		}
		t.Logf("start minio: %v", err)
	}
	if err != nil {
		t.Fatalf("start minio: %v", err)
	}

	m.root, err = minio.New(m.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(m.RootUser, m.RootPassword, ""),
		Region:       m.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatalf("minio root client: %v", err)
	}
	m.admin, err = madmin.New(m.Endpoint, m.RootUser, m.RootPassword, false)
	if err != nil {
		t.Fatalf("minio admin client: %v", err)
	}
	m.AccessKey, m.SecretKey = "vivace-user", randHex(16)
	m.Bucket = m.NewBucket(t)
	// Adding the user and attaching its policy are slow (madmin encrypts the
	// request with Argon2), so do it once; NewBucket only rewrites the policy.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := retry(ctx, func() error { return m.admin.AddUser(ctx, m.AccessKey, m.SecretKey) }); err != nil {
		t.Fatalf("minio add user: %v", err)
	}
	err = retry(ctx, func() error {
		_, err := m.admin.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{userPolicy}, User: m.AccessKey})
		return err
	})
	if err != nil {
		t.Fatalf("minio attach policy: %v", err)
	}
	return m
}

// MinIOBinary is where StartMinIO looks for the minio server: $VIVACE_MINIO,
// else ${XDG_CACHE_HOME:-$HOME/.cache}/vivace/bin/minio, where scripts/test
// installs it.
func MinIOBinary() string {
	if p := os.Getenv("VIVACE_MINIO"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "vivace", "bin", "minio")
}

// start runs one MinIO process and waits until it answers.
func (m *MinIO) start(t testing.TB, bin string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	m.Endpoint = fmt.Sprintf("127.0.0.1:%d", ports[0])
	// TempDir before Cleanup: cleanups run last-in first-out, so the process
	// is gone before its folder is removed.
	dir := t.TempDir()
	logPath := filepath.Join(dir, "minio.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", m.Endpoint,
		"--console-address", fmt.Sprintf("127.0.0.1:%d", ports[1]))
	cmd.Env = append(environWithout("MINIO_"),
		"MINIO_ROOT_USER="+m.RootUser,
		"MINIO_ROOT_PASSWORD="+m.RootPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	if err := waitLive(m.Endpoint, exited, 30*time.Second); err != nil {
		stop()
		out, _ := os.ReadFile(logPath)
		return fmt.Errorf("%w; minio log:\n%s", err, out)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("minio log:\n%s", out)
		}
	})
	return nil
}

func waitLive(endpoint string, exited <-chan struct{}, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get("http://" + endpoint + "/minio/health/live")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("health: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not live after %s: %w", timeout, err)
		}
		select {
		case <-exited:
			return errors.New("minio exited before it was live")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// NewBucket creates an empty bucket as root and extends the user's policy
// to it.
func (m *MinIO) NewBucket(t testing.TB) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	bucket := fmt.Sprintf("vivace-%d", len(m.buckets)+1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Live comes a moment before MinIO serves S3 and admin calls: retry.
	err := retry(ctx, func() error {
		return m.root.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: m.Region})
	})
	if err != nil {
		t.Fatalf("minio make bucket %s: %v", bucket, err)
	}
	m.buckets = append(m.buckets, bucket)
	doc, err := bucketPolicy(m.buckets)
	if err != nil {
		t.Fatalf("minio policy: %v", err)
	}
	if err := retry(ctx, func() error { return m.admin.AddCannedPolicy(ctx, userPolicy, doc) }); err != nil {
		t.Fatalf("minio add policy: %v", err)
	}
	return bucket
}

// RootClient is a client with the root user's rights, for setting up and
// checking what the code under test cannot do.
func (m *MinIO) RootClient() *minio.Client { return m.root }

// bucketPolicy allows userActions on buckets and their objects, nothing else.
func bucketPolicy(buckets []string) ([]byte, error) {
	type statement struct {
		Effect   string
		Action   []string
		Resource []string
	}
	var onBucket, onObjects []string
	for _, a := range userActions {
		if a == "s3:ListBucket" {
			onBucket = append(onBucket, a)
		} else {
			onObjects = append(onObjects, a)
		}
	}
	var bucketARNs, objectARNs []string
	for _, b := range buckets {
		bucketARNs = append(bucketARNs, "arn:aws:s3:::"+b)
		objectARNs = append(objectARNs, "arn:aws:s3:::"+b+"/*")
	}
	return json.Marshal(struct {
		Version   string
		Statement []statement
	}{"2012-10-17", []statement{
		{"Allow", onBucket, bucketARNs},
		{"Allow", onObjects, objectARNs},
	}})
}

func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		// Hold every listener until all are picked, so the ports differ.
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// environWithout is the environment minus variables starting with prefix,
// so a developer's MINIO_* settings do not change the test server.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}
