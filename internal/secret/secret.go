// Package secret seals small secrets (database passwords) for storage with
// AES-256-GCM. It holds the key and nothing else: what to seal and where to
// keep it is the store's business.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the name of the generated key inside the data directory.
const KeyFile = "master.key"

// Box seals and opens secrets with one key.
type Box struct {
	aead cipher.AEAD
}

// New makes a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret: the master key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return &Box{aead: aead}, nil
}

// ParseKey reads a key written as 64 hex digits or as standard base64.
func ParseKey(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if b, err := hex.DecodeString(text); err == nil && len(b) == 32 {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(text); err == nil && len(b) == 32 {
		return b, nil
	}
	return nil, errors.New("secret: a master key is 32 bytes written as 64 hex digits or base64")
}

// LoadOrCreateKey returns the key from envKey when set, else from
// dir/master.key, creating that file (mode 0600) on first use. created says
// whether a new key was written.
func LoadOrCreateKey(envKey, dir string) (key []byte, created bool, err error) {
	if envKey != "" {
		key, err = ParseKey(envKey)
		return key, false, err
	}
	path := filepath.Join(dir, KeyFile)
	text, err := os.ReadFile(path)
	if err == nil {
		key, err = ParseKey(string(text))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("secret: read key: %w", err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("secret: generate key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("secret: write key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("secret: write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("secret: write key: %w", err)
	}
	return key, true, nil
}

// Seal encrypts plaintext; the result is base64 of nonce and ciphertext.
// The empty string seals to the empty string: there is nothing to hide in
// "no password", and it keeps stored rows readable.
func (b *Box) Seal(plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secret: nonce: %w", err)
	}
	sealed := b.aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return base64.StdEncoding.EncodeToString(sealed), nil
}

// Open decrypts what Seal produced. A wrong key or a damaged value is an
// error that names neither the key nor the value.
func (b *Box) Open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", errors.New("secret: the sealed value is damaged")
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return "", errors.New("secret: the sealed value cannot be opened with this master key (was OPENDTS_MASTER_KEY or master.key changed?)")
	}
	return string(plain), nil
}
