package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// selfSigned writes a certificate for name and its key into dir.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// Over TLS the console works on a name that is not loopback, as the
// README advises: the page is a secure context, so it signs and signs in.
func TestConsoleOverTLS(t *testing.T) {
	b := newBrowser(t, chromedp.IgnoreCertErrors)
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "opendts-console.test")
	addr := freeAddr(t)
	logFile, err := os.Create(filepath.Join(dir, "opendts.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(buildBinary(t), "serve", "-listen", addr, "-data-dir", filepath.Join(dir, "data"), "-tls-cert", cert, "-tls-key", key)
	cmd.Env = append(os.Environ(), "OPENDTS_SECRET_ID=AKIDe2e", "OPENDTS_SECRET_KEY=e2e-key")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("opendts did not start over TLS: %s", tail(logFile.Name()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, port, _ := net.SplitHostPort(addr)
	b.run("sign in over TLS on a non-loopback name", 30*time.Second,
		chromedp.Navigate("https://opendts-console.test:"+port+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#secretId")),
		chromedp.WaitNotPresent(chromedp.CSS("#insecure")),
		chromedp.SendKeys(chromedp.CSS("#secretId"), "AKIDe2e"),
		chromedp.SendKeys(chromedp.CSS("#secretKey"), "e2e-key"),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#jobs-body")))
	if summary := b.text("#list-summary"); summary != "0 jobs." {
		t.Errorf("the list says %q", summary)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("the browser's console has errors: %v", errs)
	}
}
