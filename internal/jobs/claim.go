package jobs

import (
	"context"
	"errors"
)

// In cluster mode several nodes share one store. Two rules keep their
// writes apart:
//
//   - A job read from the store carries its Revision; UpdateJob refuses with
//     ErrConflict when the stored job changed since (another node wrote it).
//     The service reads the job again and re-applies its change, so two
//     actions on two nodes end in one order or the other, never a mix.
//   - The writes of a job's run (its progress, its steps, its end) carry
//     the node's claim on the job (WithClaim); the store refuses them with
//     ErrNotOwner once the claim is gone or another node holds a newer one,
//     so a node that lost a job cannot write over its new owner's work.
//
// A store written by one process (SQLite) may ignore both.

// ErrConflict: the job changed in the store since it was read.
var ErrConflict = errors.New("the migration job was changed by another node meanwhile")

// ErrNotOwner: a write made for a job's run found that this node no longer
// owns the job.
var ErrNotOwner = errors.New("this node no longer owns the migration job")

// Claim is a node's ownership of a job: the node's name and the claim's
// epoch, which grows with every claim of any job (a newer owner always has
// a larger epoch). The engines write the epoch into their target-side
// checkpoints (engine.Spec.Epoch).
type Claim struct {
	Node  string
	Epoch int64
}

type claimKey struct{}

type revisionKey struct{}

// IfRevision returns ctx asking DeleteJob to delete the job only while it
// is still at revision rev (as read), and to refuse with ErrConflict
// otherwise: a delete decided on a status another node has changed since
// must not go through.
func IfRevision(ctx context.Context, rev int64) context.Context {
	return context.WithValue(ctx, revisionKey{}, rev)
}

// RevisionOf returns the revision ctx carries (IfRevision).
func RevisionOf(ctx context.Context) (int64, bool) {
	r, ok := ctx.Value(revisionKey{}).(int64)
	return r, ok && r > 0
}

// WithClaim returns ctx carrying c: a store's writes under it succeed only
// while c is the job's current claim.
func WithClaim(ctx context.Context, c Claim) context.Context {
	return context.WithValue(ctx, claimKey{}, c)
}

// ClaimOf returns the claim ctx carries.
func ClaimOf(ctx context.Context) (Claim, bool) {
	c, ok := ctx.Value(claimKey{}).(Claim)
	return c, ok
}
