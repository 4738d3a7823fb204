package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/bwsagent/bwsagent/agent/admin"
	"github.com/bwsagent/bwsagent/agent/api"
	"github.com/bwsagent/bwsagent/agent/bws"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Without a source the BWS API and the page work and the camera routes
// say why they cannot.
func TestCaptureNoSource(t *testing.T) {
	a := start(t, testConfig(t))
	for _, p := range []string{"/ws/preview", "/sessions", "/sessions/x"} {
		if code, body := httpGet(t, a.URL()+p); code != http.StatusServiceUnavailable || !strings.Contains(body, "no camera") {
			t.Errorf("GET %s: %d %q, want 503 naming the missing camera", p, code, body)
		}
	}
	if code, body := httpGet(t, a.URL()+"/"); code != http.StatusOK || !strings.Contains(body, "<html") {
		t.Errorf("GET /: %d", code)
	}
	if code, _ := httpGet(t, a.URL()+"/kiosk/token"); code != http.StatusNotFound {
		t.Errorf("GET /kiosk/token without kiosk.demoApp: %d, want 404", code)
	}
	if err := a.Healthy(); err != nil {
		t.Errorf("Healthy: %v", err)
	}
}

func TestCaptureBadSource(t *testing.T) {
	needModels(t)
	cfg := testConfig(t)
	cfg.Source = "webcam"
	if _, err := New(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "'source'") {
		t.Fatalf("New with source %q: %v, want an error naming 'source'", cfg.Source, err)
	}
}

// The demo camera end to end in process (under -race): preview frames on
// the websocket, the sessions documented in /openapi.json and served, and
// an enrollment session through the real API and liveness checker.
func TestCaptureDemoSession(t *testing.T) {
	cfg := testConfig(t)
	cfg.Source = DemoSource
	cfg.Kiosk.DemoApp, cfg.Kiosk.DemoBCID = "kiosk", "bws.1.42"
	a := start(t, cfg, func(a *Agent) {
		if _, _, err := a.local.AddApp(context.Background(), admin.NewApp{ID: "kiosk", Storage: "bws", Partitions: []int{1}}); err != nil {
			t.Fatal(err)
		}
	})

	wsURL := "ws" + strings.TrimPrefix(a.URL(), "http") + "/ws/preview"
	// Cross-site websocket hijacking: a page on another origin must not get
	// the camera's pictures from the daemon.
	if evil, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Origin": {"https://evil.example"}}); err == nil {
		evil.Close()
		t.Fatal("preview websocket accepted a foreign Origin")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Origin: %v (response %v), want 403", err, resp)
	}
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		typ, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("preview: %v", err)
		}
		if typ == websocket.BinaryMessage {
			if len(b) < 1000 || b[0] != 0xFF || b[1] != 0xD8 {
				t.Fatalf("preview frame is no JPEG (%d bytes)", len(b))
			}
			break
		}
	}

	_, doc := httpGet(t, a.URL()+"/openapi.json")
	var spec struct {
		Paths map[string]map[string]any
	}
	if err := json.Unmarshal([]byte(doc), &spec); err != nil {
		t.Fatal(err)
	}
	for p, item := range spec.Paths {
		if !strings.HasPrefix(p, "/sessions") {
			continue
		}
		for method := range item {
			if method == "parameters" || method == "servers" {
				continue
			}
			url := a.URL() + strings.ReplaceAll(p, "{id}", "unknown")
			req, _ := http.NewRequest(strings.ToUpper(method), url, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if _, documented := item[method].(map[string]any)["responses"].(map[string]any)[strconv.Itoa(resp.StatusCode)]; !documented {
				t.Errorf("%s %s: %d is not a documented status", method, p, resp.StatusCode)
			}
		}
	}
	if len(spec.Paths) < 15 {
		t.Errorf("/openapi.json documents %d paths, want the BWS routes and the 3 session paths", len(spec.Paths))
	}

	bcid, _ := bws.ParseBCID(cfg.Kiosk.DemoBCID)
	tok, err := a.IssueToken(context.Background(), "kiosk", bcid, bws.OpEnroll, api.DefaultTokenOptions())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"token": tok})
	resp, err := http.Post(a.URL()+"/sessions", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /sessions: %d", resp.StatusCode)
	}
	// Server-sent events to the end: the stream closes after the result.
	resp, err = http.Get(a.URL() + "/sessions/" + st.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var result string
	var steps []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		switch {
		case !ok:
		case strings.Contains(d, `"done":true`):
			// The final state; the "result" event that follows it may miss
			// the stream (session's SSE handler ends on the done state).
			result = d
		case !strings.Contains(d, `"type":"countdown"`):
			steps = append(steps, d)
		}
	}
	if !strings.Contains(result, `"state":"succeeded"`) {
		t.Fatalf("session result %s, want success; prompts and captures:\n%s", result, strings.Join(steps, "\n"))
	}
	if err := a.Healthy(); err != nil {
		t.Errorf("Healthy: %v", err)
	}
	if code, body := httpGet(t, a.URL()+"/metrics"); code != 200 || !strings.Contains(body, "bwsagent_capture_up 1") {
		t.Errorf("/metrics lacks bwsagent_capture_up 1")
	}
}
