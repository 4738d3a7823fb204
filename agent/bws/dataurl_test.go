package bws

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
)

// pngWithPlus is a PNG signature followed by bytes whose base64 contains
// both '+' and '/', the characters form decoding would damage.
var pngWithPlus = append([]byte("\x89PNG\r\n\x1a\n"), 0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff, 0x3e, 0x00)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestParseDataURL(t *testing.T) {
	png := pngWithPlus
	if s := b64(png); !strings.Contains(s, "+") || !strings.Contains(s, "/") {
		t.Fatalf("fixture %q lacks + or /", s)
	}
	jpeg := []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	gif := []byte("GIF89a\x01\x00\x01\x00")
	bmp := append([]byte("BM"), make([]byte, 30)...)
	tiff := []byte("II*\x00\x08\x00\x00\x00")
	wrapped := func(s string) string { // MIME style, CRLF every 8 chars
		var b strings.Builder
		for len(s) > 8 {
			b.WriteString(s[:8] + "\r\n")
			s = s[8:]
		}
		return b.String() + s
	}

	tests := []struct {
		name   string
		body   string
		format ImageFormat
		data   []byte
		err    error
	}{
		{"png", "data:image/png;base64," + b64(png), PNG, png, nil},
		{"surrounding whitespace", "\r\n  data:image/png;base64," + b64(png) + "\n\n", PNG, png, nil},
		{"line breaks in payload", "data:image/png;base64," + wrapped(b64(png)), PNG, png, nil},
		{"upper case header", "DATA:IMAGE/PNG;BASE64," + b64(png), PNG, png, nil},
		{"unpadded", "data:image/png;base64," + strings.TrimRight(b64(png[:10]), "="), PNG, png[:10], nil},
		{"jpeg", "data:image/jpeg;base64," + b64(jpeg), JPEG, jpeg, nil},
		{"jpg alias", "data:image/jpg;base64," + b64(jpeg), JPEG, jpeg, nil},
		{"gif", "data:image/gif;base64," + b64(gif), GIF, gif, nil},
		{"bmp", "data:image/bmp;base64," + b64(bmp), BMP, bmp, nil},
		{"tiff", "data:image/tiff;base64," + b64(tiff), TIFF, tiff, nil},
		{"mislabelled keeps the real format", "data:image/png;base64," + b64(jpeg), JPEG, jpeg, nil},

		{"empty", "", "", nil, ErrMissingData},
		{"only whitespace", " \r\n\t", "", nil, ErrMissingData},
		{"empty payload", "data:image/png;base64,", "", nil, ErrMissingData},
		{"not a data URL", "hello", "", nil, ErrInvalidSampleData},
		{"raw base64", b64(png), "", nil, ErrInvalidSampleData},
		{"no comma", "data:image/png;base64" + b64(png), "", nil, ErrInvalidSampleData},
		{"not base64", "data:image/png," + b64(png), "", nil, ErrInvalidSampleData},
		{"extra parameter", "data:image/png;charset=x;base64," + b64(png), "", nil, ErrInvalidSampleData},
		{"webp", "data:image/webp;base64," + b64(png), "", nil, ErrInvalidSampleData},
		{"text", "data:text/plain;base64," + b64(png), "", nil, ErrInvalidSampleData},
		{"no media type", "data:;base64," + b64(png), "", nil, ErrInvalidSampleData},
		{"form-decoded plus", "data:image/png;base64," + strings.ReplaceAll(b64(png), "+", " "), "", nil, ErrInvalidSampleData},
		{"percent-encoded", "data%3Aimage%2Fpng%3Bbase64%2C" + b64(png), "", nil, ErrInvalidSampleData},
		{"url-safe alphabet", "data:image/png;base64," + base64.URLEncoding.EncodeToString(png), "", nil, ErrInvalidSampleData},
		{"not an image", "data:image/png;base64," + b64([]byte("just some text, no image")), "", nil, ErrInvalidSampleData},
		{"short bmp", "data:image/bmp;base64," + b64([]byte("BM")), "", nil, ErrInvalidSampleData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseDataURL([]byte(tt.body), 0)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				var se *SampleError
				if !errors.As(err, &se) || se.Code() != tt.err.Error() {
					t.Fatalf("err %v is not a *SampleError with code %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Format != tt.format || !bytes.Equal(s.Data, tt.data) {
				t.Fatalf("got %s %x, want %s %x", s.Format, s.Data, tt.format, tt.data)
			}
		})
	}
}

func TestParseDataURLSizeLimit(t *testing.T) {
	png := append(append([]byte(nil), pngWithPlus...), make([]byte, 100)...) // 116 bytes
	body := []byte("data:image/png;base64," + b64(png))
	if _, err := ParseDataURL(body, len(png)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	_, err := ParseDataURL(body, len(png)-1)
	if !errors.Is(err, ErrSampleTooLarge) || !errors.Is(err, ErrInvalidSampleData) {
		t.Fatalf("over the limit: %v", err)
	}
	var se *SampleError
	if !errors.As(err, &se) || se.Code() != "InvalidSampleData" {
		t.Fatalf("code of %v", err)
	}

	// The limit is checked before decoding: a huge payload of garbage is
	// "too large", not "bad base64".
	garbage := []byte("data:image/png;base64," + strings.Repeat("!", 4000))
	if _, err := ParseDataURL(garbage, 1000); !errors.Is(err, ErrSampleTooLarge) {
		t.Fatalf("garbage over the limit: %v", err)
	}
}

// countingReader yields endless base64 text and counts what was read.
type countingReader struct{ n int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	r.n += int64(len(p))
	return len(p), nil
}

func TestReadDataURL(t *testing.T) {
	s, err := ReadDataURL(strings.NewReader("data:image/png;base64,"+b64(pngWithPlus)+"\n"), 1024)
	if err != nil || !bytes.Equal(s.Data, pngWithPlus) {
		t.Fatalf("ReadDataURL = %v, %v", s, err)
	}

	const max = 1 << 10
	r := &countingReader{}
	_, err = ReadDataURL(io.MultiReader(strings.NewReader("data:image/png;base64,"), r), max)
	if !errors.Is(err, ErrSampleTooLarge) {
		t.Fatalf("endless body: %v", err)
	}
	if r.n > int64(maxEncodedLen(max))+512 {
		t.Fatalf("read %d bytes of an endless body for a %d-byte limit", r.n, max)
	}

	if _, err := ReadDataURL(strings.NewReader(""), 0); !errors.Is(err, ErrMissingData) {
		t.Fatalf("empty body: %v", err)
	}
	wantErr := errors.New("boom")
	if _, err := ReadDataURL(io.MultiReader(strings.NewReader("data:"), errReader{wantErr}), 0); !errors.Is(err, wantErr) {
		t.Fatalf("read error: %v", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func FuzzParseDataURL(f *testing.F) {
	for _, s := range []string{
		"data:image/png;base64," + b64(pngWithPlus),
		"data:image/jpeg;base64," + b64([]byte("\xff\xd8\xff\xe0")),
		"data:image/gif;base64,R0lGODlhAQABAAAAACw=",
		" data:image/png;base64,iVBORw0KGgo=\r\n",
		"data:image/png;base64,iVBORw0KGgo",
		"data:image/png;base64,", "data:", "", "data:image/png;base64,====",
		"data:image/tiff;base64,SUkqAA==", "data:image/bmp;base64,Qk0=",
	} {
		f.Add([]byte(s))
	}
	const max = 4096
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseDataURL(body, max)
		if err != nil {
			var se *SampleError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SampleError", err)
			}
			if !errors.Is(err, ErrMissingData) && !errors.Is(err, ErrInvalidSampleData) {
				t.Fatalf("error %v has no contract code", err)
			}
			return
		}
		if len(s.Data) > max {
			t.Fatalf("decoded %d bytes over the %d limit", len(s.Data), max)
		}
		if f, ok := sniff(s.Data); !ok || f != s.Format {
			t.Fatalf("format %q does not match the data", s.Format)
		}
		// Re-encoding gives a URL that parses to the same bytes.
		again, err := ParseDataURL([]byte("data:image/"+string(s.Declared)+";base64,"+b64(s.Data)), max)
		if err != nil || !bytes.Equal(again.Data, s.Data) {
			t.Fatalf("re-encoded sample: %v", err)
		}
	})
}

func BenchmarkParseDataURL(b *testing.B) {
	img := append(append([]byte(nil), pngWithPlus...), bytes.Repeat([]byte{0xab, 0x2f, 0xfe}, 100<<10)...) // ~300 KB
	body := []byte("data:image/png;base64," + b64(img) + "\n")
	b.SetBytes(int64(len(img)))
	for b.Loop() {
		if _, err := ParseDataURL(body, 0); err != nil {
			b.Fatal(err)
		}
	}
}
