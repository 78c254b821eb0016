package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/testetcd"
)

// testCA makes a CA and a certificate it signed for 127.0.0.1, usable by
// the server and as a client certificate, as PEM files in dir.
func testCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	write := func(name, kind string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "opendts test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return write("ca.pem", "CERTIFICATE", caDER), write("node.pem", "CERTIFICATE", der), write("node-key.pem", "EC PRIVATE KEY", keyDER)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A node reaches an etcd that serves TLS and asks for client certificates
// (-etcd-cacert, -etcd-cert, -etcd-key); without a client certificate it
// is refused.
func TestConnectOverTLS(t *testing.T) {
	testetcd.Shared(t) // installs etcd when it is missing
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not on PATH")
	}
	dir := t.TempDir()
	caFile, certFile, keyFile := testCA(t, dir)
	client, peer := freePort(t), freePort(t)
	url := fmt.Sprintf("https://127.0.0.1:%d", client)
	cmd := exec.Command(bin, "--name", "tls0", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-cluster", fmt.Sprintf("tls0=http://127.0.0.1:%d", peer),
		"--cert-file", certFile, "--key-file", keyFile, "--trusted-ca-file", caFile, "--client-cert-auth")
	logFile, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
	})

	ctx := context.Background()
	cfg := EtcdConfig{Endpoints: []string{url}, CAFile: caFile, CertFile: certFile, KeyFile: keyFile, DialTimeout: 2 * time.Second}
	var c interface{ Close() error }
	deadline := time.Now().Add(20 * time.Second)
	for {
		cl, err := Connect(ctx, cfg)
		if err == nil {
			c = cl
			st, err := OpenStore(ctx, cl, NewKeys(""), testBox(t, key1))
			if err != nil {
				t.Fatal(err)
			}
			if err := st.CreateJob(ctx, sampleJob("dts-tls00001")); err != nil {
				t.Fatal(err)
			}
			st.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("no TLS connection: %v\n%s", err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.Close()

	noCert := EtcdConfig{Endpoints: []string{url}, CAFile: caFile, DialTimeout: 2 * time.Second}
	if cl, err := Connect(ctx, noCert); err == nil {
		cl.Close()
		t.Error("a client without a certificate was let in")
	} else if !strings.Contains(err.Error(), "etcd") {
		t.Errorf("without a client certificate: %v", err)
	}
}
