package cloudapi

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// KeyRing is a fixed set of SecretId/SecretKey pairs.
type KeyRing map[string]string

// SecretKey implements Credentials.
func (k KeyRing) SecretKey(id string) (string, bool) {
	key, ok := k[id]
	return key, ok
}

// ParseKeyRing reads pairs, one per line as "SecretId SecretKey" (spaces,
// tabs or one '=' between them); blank lines and lines starting with # are
// ignored.
func ParseKeyRing(r io.Reader) (KeyRing, error) {
	ring := KeyRing{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' })
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d: expected \"SecretId SecretKey\"", line)
		}
		if _, dup := ring[fields[0]]; dup {
			return nil, fmt.Errorf("line %d: SecretId %s is listed twice", line, fields[0])
		}
		ring[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(ring) == 0 {
		return nil, errors.New("no SecretId/SecretKey pair")
	}
	return ring, nil
}

// LoadKeyRing reads a credentials file.
func LoadKeyRing(path string) (KeyRing, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ring, err := ParseKeyRing(f)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return ring, nil
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func randomText(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = keyAlphabet[int(b[i])%len(keyAlphabet)]
	}
	return string(b), nil
}

// GenerateKeyRingFile writes a new pair to path (mode 0600, failing if the
// file exists) in the format ParseKeyRing reads, and returns the SecretId.
func GenerateKeyRingFile(path string) (string, error) {
	idPart, err := randomText(32)
	if err != nil {
		return "", err
	}
	key, err := randomText(32)
	if err != nil {
		return "", err
	}
	id := "AKID" + idPart
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = fmt.Fprintf(f, "# opendts API credentials: SecretId SecretKey, one pair per line.\n%s %s\n", id, key)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return id, nil
}
