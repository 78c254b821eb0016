package jobs

import (
	"encoding/json"
	"fmt"
)

// Sealer seals and opens text (internal/secret's Box).
type Sealer interface {
	Seal(plaintext string) (string, error)
	Open(sealed string) (string, error)
}

// sealedPasswords is what a store keeps sealed of a job: its passwords,
// as JSON. Every store uses this form, so a job's sealed passwords mean
// the same in SQLite and in etcd.
type sealedPasswords struct {
	Src   string
	Dst   string
	Multi []string `json:",omitempty"`
}

// SealPasswords returns j's passwords sealed by box, for a store to keep
// apart from the job's document.
func SealPasswords(box Sealer, j *Job) (string, error) {
	sec := sealedPasswords{Src: j.Src.Password, Dst: j.Dst.Password}
	for _, m := range j.SrcInfoMulti {
		sec.Multi = append(sec.Multi, m.Password)
	}
	plain, err := json.Marshal(sec)
	if err != nil {
		return "", err
	}
	return box.Seal(string(plain))
}

// OpenPasswords puts into j the passwords SealPasswords sealed. Its errors
// name the job, never a password.
func OpenPasswords(box Sealer, j *Job, sealed string) error {
	plain, err := box.Open(sealed)
	if err != nil {
		return fmt.Errorf("job %s: %w", j.ID, err)
	}
	if plain == "" {
		return nil
	}
	var sec sealedPasswords
	if err := json.Unmarshal([]byte(plain), &sec); err != nil {
		return fmt.Errorf("job %s: sealed passwords are damaged: %w", j.ID, err)
	}
	j.Src.Password, j.Dst.Password = sec.Src, sec.Dst
	for i := range j.SrcInfoMulti {
		if i < len(sec.Multi) {
			j.SrcInfoMulti[i].Password = sec.Multi[i]
		}
	}
	return nil
}
