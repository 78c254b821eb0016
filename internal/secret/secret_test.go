package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	dir := t.TempDir()
	key, created, err := LoadOrCreateKey("", dir)
	if err != nil || !created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	st, _ := os.Stat(filepath.Join(dir, KeyFile))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode().Perm())
	}
	again, created, err := LoadOrCreateKey("", dir)
	if err != nil || created || string(again) != string(key) {
		t.Fatalf("second load: created=%v err=%v same=%v", created, err, string(again) == string(key))
	}
	box, _ := New(key)
	sealed, err := box.Seal("pa$$ 密码")
	if err != nil || strings.Contains(sealed, "pa$$") {
		t.Fatalf("sealed %q err %v", sealed, err)
	}
	other, _ := box.Seal("pa$$ 密码")
	if other == sealed {
		t.Error("two seals of one secret are equal: the nonce is not random")
	}
	if plain, err := box.Open(sealed); err != nil || plain != "pa$$ 密码" {
		t.Errorf("open = %q, %v", plain, err)
	}
	otherKey, _, _ := LoadOrCreateKey(strings.Repeat("ab", 32), "")
	wrong, _ := New(otherKey)
	if _, err := wrong.Open(sealed); err == nil || strings.Contains(err.Error(), "pa$$") {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := box.Open("!!!"); err == nil {
		t.Error("damaged value opened")
	}
	if _, err := ParseKey("short"); err == nil {
		t.Error("short key accepted")
	}
}
