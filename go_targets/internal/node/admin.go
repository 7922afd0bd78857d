package node

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
)

// AdminTokenEnv names the environment variable maptarget reads its admin
// token from when --admin-token is not given (the controller uses it, so the
// token is not in the process's command line).
const AdminTokenEnv = "MAPTARGET_ADMIN_TOKEN"

// Errors of CheckAdmin.
var (
	// ErrAdminDisabled: the node has no admin token, so no caller may use
	// the admin operations.
	ErrAdminDisabled = errors.New("admin operations are disabled: start maptarget with --admin-token or " + AdminTokenEnv)
	// ErrAdminToken: the caller's token is missing or wrong.
	ErrAdminToken = errors.New(`admin operations need "authorization: Bearer <admin token>"`)
)

// SetAdminToken sets the token POST /admin/gc, Stats(gc=true) and Replicate
// require; "" disables them. Call it before serving.
func (n *Node) SetAdminToken(token string) {
	if token == "" {
		n.adminToken = nil
		return
	}
	sum := sha256.Sum256([]byte(token))
	n.adminToken = sum[:]
}

// CheckAdmin checks an "authorization" header or metadata value, which must
// be "Bearer <token>", against the node's admin token, in constant time.
func (n *Node) CheckAdmin(authorization string) error {
	if n.adminToken == nil {
		return ErrAdminDisabled
	}
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	sum := sha256.Sum256([]byte(token))
	if !ok || subtle.ConstantTimeCompare(sum[:], n.adminToken) != 1 {
		return ErrAdminToken
	}
	return nil
}
