package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The client commands play a whole BWS client flow, as BWS's browser UI or
// a kiosk app does: GET /token with Basic auth, POST /upload of each image
// as a raw data URL (in parallel, with index and tag), then the biometric
// call with the token as Bearer.

// maxClientImage bounds an image the client reads.
const maxClientImage = 64 << 20

func (m *Main) client(ctx context.Context, op string, args []string) error {
	fs := m.newFlagSet("client "+op, "[options] IMAGE...",
		`Plays a whole BWS client flow against a running agent: gets a `+op+` token
(GET /token, Basic auth with --app and --secret), uploads every IMAGE as a
raw data URL (POST /upload, in parallel, with index and tag), then calls
/`+op+` with the token (Bearer) and prints its JSON answer. Upload results go
to stderr. Exit status 1 when the answer's Success is false.

Liveness detection needs at least two images with natural head motion;
it is off unless --livedetection is given, as still photos have none.
With --challenge, tag the images as the token's challenge asks (printed on
stderr): image 1 'any', then one direction per image.`)
	baseURL := fs.String("url", "http://127.0.0.1:8480/extension/", "the agent's BWS base URL (with the base path)")
	bcid := fs.String("bcid", "", "class: storage.partition.classid (required, except for identify: the storage and partition to search, any class id)")
	app := fs.String("app", "", "app id (required)")
	secret := fs.String("secret", "", "app secret (default $BWSAGENT_APP_SECRET, which keeps it out of the process list)")
	tags := fs.String("tags", "", "comma-separated tag per image: any, up, down, left, right (default any)")
	live := fs.Bool("livedetection", false, "require liveness detection (needs 2+ images with head motion)")
	challenge := fs.Bool("challenge", false, "challenge-response liveness (implies --livedetection)")
	maxTries := fs.Int("maxtries", 3, "tries the token allows (1-15)")
	maxResults := fs.Int("max-results", 20, "identify: most matches to return")
	timeout := fs.Duration("timeout", time.Minute, "bound for the whole flow")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *secret == "" {
		*secret = os.Getenv("BWSAGENT_APP_SECRET")
	}
	images := fs.Args()
	switch {
	case *app == "" || *secret == "":
		return usagef("client %s needs --app and --secret (or $BWSAGENT_APP_SECRET)", op)
	case *bcid == "":
		return usagef("client %s needs --bcid, e.g. bws.12.4711", op)
	case len(images) == 0:
		return usagef("client %s needs at least one IMAGE", op)
	}
	tagList := make([]string, len(images))
	for i := range tagList {
		tagList[i] = "any"
	}
	if *tags != "" {
		ts := strings.Split(*tags, ",")
		if len(ts) > len(images) {
			return usagef("--tags has %d tags for %d images", len(ts), len(images))
		}
		for i, t := range ts {
			tagList[i] = strings.TrimSpace(t)
		}
	}
	base, err := url.Parse(*baseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usagef("--url must be an http(s) URL such as http://127.0.0.1:8480/extension/, got %q", *baseURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := &bwsClient{base: base, http: &http.Client{}}

	// 1. Token.
	q := url.Values{"id": {*app}, "bcid": {*bcid}, "task": {op}, "maxtries": {strconv.Itoa(*maxTries)},
		"livedetection": {strconv.FormatBool(*live || *challenge)}}
	if *challenge {
		q.Set("challenge", "true")
	}
	tok, err := c.token(ctx, q, *app, *secret)
	if err != nil {
		return err
	}
	if ch := challengeOf(tok); ch != "" {
		fmt.Fprintf(m.Stderr, "challenge: %s\n", ch)
	}

	// 2. Uploads, in parallel as BWS's UI sends them.
	results := make([]string, len(images))
	errs := make([]error, len(images))
	var wg sync.WaitGroup
	for i, img := range images {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.upload(ctx, tok, img, i+1, tagList[i])
		}()
	}
	wg.Wait()
	for i, img := range images {
		if errs[i] != nil {
			return fmt.Errorf("upload %d (%s): %w", i+1, img, errs[i])
		}
		fmt.Fprintf(m.Stderr, "upload %d (%s, tag %s): %s\n", i+1, filepath.Base(img), tagList[i], results[i])
	}

	// 3. The biometric call.
	call := url.Values{}
	if *live || *challenge {
		call.Set("livedetection", "true")
	}
	if op == "identify" {
		call.Set("maxResults", strconv.Itoa(*maxResults))
	}
	body, err := c.perform(ctx, op, tok, call)
	if err != nil {
		return err
	}
	m.Stdout.Write(body)
	if !bytes.HasSuffix(body, []byte("\n")) {
		fmt.Fprintln(m.Stdout)
	}
	var res struct {
		Success bool
		Error   string
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("%s: answer is not JSON: %w", op, err)
	}
	if !res.Success {
		if res.Error != "" {
			return fmt.Errorf("%s: not successful: %s", op, res.Error)
		}
		return fmt.Errorf("%s: not successful", op)
	}
	return nil
}

type bwsClient struct {
	base *url.URL
	http *http.Client
}

func (c *bwsClient) url(route string, q url.Values) string {
	u := *c.base
	u.Path += route
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends req and returns the body of a 200 answer; other statuses become
// errors carrying BWS's {"Message"} and a hint.
func (c *bwsClient) do(req *http.Request, what string) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (is the agent running? check --url)", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	msg := strings.TrimSpace(string(body))
	var m struct{ Message string }
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		msg = m.Message
	}
	hint := ""
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		hint = " (check --app and --secret)"
	case http.StatusForbidden:
		hint = " (wrong secret, a partition the app may not use, or the token's tries are used up)"
	case http.StatusNotFound:
		hint = " (check --url: it must end with the base path, e.g. /extension/)"
	}
	return nil, fmt.Errorf("%s: %s: %s%s", what, resp.Status, msg, hint)
}

func (c *bwsClient) token(ctx context.Context, q url.Values, app, secret string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("token", q), nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(app, secret)
	body, err := c.do(req, "token")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(body)), nil
}

func (c *bwsClient) upload(ctx context.Context, tok, path string, index int, tag string) (string, error) {
	data, err := readImage(path)
	if err != nil {
		return "", err
	}
	q := url.Values{"tag": {tag}, "index": {strconv.Itoa(index)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("upload", q), strings.NewReader(data))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	// What BWS's browser UI sends: the raw data URL, not form-encoded.
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	body, err := c.do(req, "upload")
	if err != nil {
		return "", err
	}
	var res struct {
		Accepted bool
		Error    string
		Warnings []string
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return "", fmt.Errorf("upload answer: %w", err)
	}
	s := "accepted"
	if !res.Accepted {
		s = "not accepted: " + res.Error
	}
	if len(res.Warnings) > 0 {
		s += " (warnings: " + strings.Join(res.Warnings, ", ") + ")"
	}
	return s, nil
}

func (c *bwsClient) perform(ctx context.Context, op, tok string, q url.Values) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(op, q), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return c.do(req, op)
}

// readImage reads an image file as a data URL.
func readImage(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxClientImage+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxClientImage {
		return "", fmt.Errorf("%s is larger than %d MiB", path, maxClientImage>>20)
	}
	mime := http.DetectContentType(b)
	switch {
	case strings.HasPrefix(mime, "image/"):
	case bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*")):
		mime = "image/tiff"
	default:
		return "", errors.New(path + " is not a png, jpeg, bmp, gif or tiff image")
	}
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(b), nil
}

// challengeOf returns the token's "challenge" claim, if any, for the user
// to tag images by. The token is not verified here: the agent does that.
func challengeOf(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Challenge
}
