package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// webhookAttempts bounds retries of a webhook POST.
const webhookAttempts = 3

// postWebhook POSTs the final state to Config.WebhookURL, retrying with
// 1 s, 2 s pauses on network errors and 5xx. It gives up when ctx ends
// (Manager.Close). The kiosk app must still confirm the outcome with
// /result: a webhook is a notification, not proof.
func (m *Manager) postWebhook(ctx context.Context, st State) {
	body, err := json.Marshal(map[string]any{"type": "result", "session": st})
	if err != nil {
		m.log.Error("webhook body", "err", err)
		return
	}
	for attempt := 1; attempt <= webhookAttempts; attempt++ {
		err = m.postOnce(ctx, body)
		if err == nil {
			return
		}
		if attempt == webhookAttempts {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-m.clock.After(time.Duration(attempt) * time.Second):
		}
	}
	m.log.Warn("webhook failed", "session", st.ID, "err", err)
}

func (m *Manager) postOnce(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.deps.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook: HTTP %d", resp.StatusCode)
	}
	return nil
}
