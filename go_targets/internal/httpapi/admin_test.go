package httpapi

import (
	"net/http"
	"testing"

	"github.com/mapquake/mapquake/go_targets/internal/node"
)

func TestAdminGCNeedsTheToken(t *testing.T) {
	srv, _, n := newServerWith(t, "mutexmap", "[]byte", node.Limits{}, Options{})
	for _, auth := range []string{"", "Bearer wrong", testAdminToken, "Basic " + testAdminToken} {
		r := callAuth(t, srv, "POST", "/admin/gc", "", auth)
		if r.code != http.StatusUnauthorized {
			t.Errorf("authorization %q: %d %s, want 401", auth, r.code, r.body)
		}
	}
	if r := call(t, srv, "POST", "/admin/gc", ""); r.code != http.StatusOK {
		t.Errorf("with the token: %d %s", r.code, r.body)
	}
	n.SetAdminToken("")
	if r := call(t, srv, "POST", "/admin/gc", ""); r.code != http.StatusForbidden {
		t.Errorf("a node without a token: %d %s, want 403", r.code, r.body)
	}
	// The key-value API and health stay open.
	if r := callAuth(t, srv, "PUT", "/kv/k", "v", ""); r.code != http.StatusCreated {
		t.Errorf("put without a token: %d %s", r.code, r.body)
	}
}
