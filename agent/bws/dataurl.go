package bws

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxSampleBytes is the default limit on a decoded sample (an image
// file). Camera frames as JPEG or PNG are well below it.
const DefaultMaxSampleBytes = 8 << 20

// Sample errors in the contract's words: handlers answer 400 with
// {"Message":"MissingData"} or {"Message":"InvalidSampleData"}.
// ErrSampleTooLarge also matches ErrInvalidSampleData, so a handler that does
// not care answers it the same way; one that does can answer 413.
var (
	ErrMissingData       = errors.New("MissingData")
	ErrInvalidSampleData = errors.New("InvalidSampleData")
	ErrSampleTooLarge    = fmt.Errorf("%w: sample too large", ErrInvalidSampleData)
)

// SampleError says why an uploaded sample was rejected. errors.Is matches
// its Err: ErrMissingData, ErrInvalidSampleData or ErrSampleTooLarge.
type SampleError struct {
	Err    error
	Reason string
}

func (e *SampleError) Error() string { return "bws: sample: " + e.Reason }
func (e *SampleError) Unwrap() error { return e.Err }

// Code returns the contract's word for the error: "MissingData" or
// "InvalidSampleData".
func (e *SampleError) Code() string {
	if errors.Is(e.Err, ErrMissingData) {
		return ErrMissingData.Error()
	}
	return ErrInvalidSampleData.Error()
}

func missing(reason string) error { return &SampleError{Err: ErrMissingData, Reason: reason} }
func invalid(reason string) error { return &SampleError{Err: ErrInvalidSampleData, Reason: reason} }

// ImageFormat is an image file format accepted in uploads.
type ImageFormat string

// Accepted formats: png, jpeg (also written jpg), bmp, gif, tiff.
const (
	PNG  ImageFormat = "png"
	JPEG ImageFormat = "jpeg"
	BMP  ImageFormat = "bmp"
	GIF  ImageFormat = "gif"
	TIFF ImageFormat = "tiff"
)

// formatOf maps the lower-case subtype of "image/<subtype>" to a format.
func formatOf(subtype string) (ImageFormat, bool) {
	switch subtype {
	case "png":
		return PNG, true
	case "jpeg", "jpg":
		return JPEG, true
	case "bmp":
		return BMP, true
	case "gif":
		return GIF, true
	case "tiff":
		return TIFF, true
	}
	return "", false
}

// Sample is a decoded data URL.
type Sample struct {
	// Declared is the format named in the data URL's media type.
	Declared ImageFormat
	// Format is the format the payload's magic bytes show. It may differ
	// from Declared (clients mislabel); decoders should trust Format.
	Format ImageFormat
	// Data is the image file.
	Data []byte
}

// ReadDataURL reads a data URL from a raw request body, whatever the
// Content-Type, and decodes it with ParseDataURL. It reads no more than the
// encoded size of maxBytes plus a little framing, so an oversized body is
// rejected without being buffered. maxBytes <= 0 means DefaultMaxSampleBytes.
func ReadDataURL(r io.Reader, maxBytes int) (*Sample, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxSampleBytes
	}
	limit := int64(maxEncodedLen(maxBytes))
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("bws: read sample: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, &SampleError{Err: ErrSampleTooLarge, Reason: fmt.Sprintf("body exceeds %d bytes", limit)}
	}
	return ParseDataURL(b, maxBytes)
}

// maxEncodedLen is the longest body that can hold a sample of maxBytes: the
// base64 text, line breaks every 76 characters (MIME style), the header and
// surrounding whitespace.
func maxEncodedLen(maxBytes int) int {
	n := base64.StdEncoding.EncodedLen(maxBytes)
	return n + 2*(n/76+1) + 256
}

// ParseDataURL decodes a data URL "data:image/<png|jpeg|jpg|bmp|gif|tiff>;base64,<payload>"
// taken from a raw body. Whitespace around the URL is ignored, as are line
// breaks inside the payload; the body is never form-decoded, so '+' stays
// '+'. Padded and unpadded standard base64 are accepted. The size limit
// (maxBytes, DefaultMaxSampleBytes when <= 0) is checked on the encoded
// length, before decoding. The payload must start like one of the accepted
// image formats.
func ParseDataURL(body []byte, maxBytes int) (*Sample, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxSampleBytes
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, missing("empty body")
	}
	const scheme = "data:"
	if len(body) < len(scheme) || !bytes.EqualFold(body[:len(scheme)], []byte(scheme)) {
		return nil, invalid("not a data URL")
	}
	comma := bytes.IndexByte(body, ',')
	// The header is short; a comma far away means this is not our format.
	if comma < 0 || comma > 64 {
		return nil, invalid("data URL without header")
	}
	declared, err := parseMediaHeader(body[len(scheme):comma])
	if err != nil {
		return nil, err
	}
	payload := body[comma+1:]
	if len(payload) == 0 {
		return nil, missing("empty payload")
	}
	if bytes.ContainsAny(payload, "\r\n") {
		// base64 skips line breaks itself, but they would skew the length
		// arithmetic below.
		payload = bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, payload)
	}
	enc := base64.StdEncoding
	if len(payload)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	// Checked before decoding: DecodedLen is an upper bound of the output.
	if enc.DecodedLen(len(payload)) > maxBytes+2 {
		return nil, &SampleError{Err: ErrSampleTooLarge, Reason: fmt.Sprintf("sample exceeds %d bytes", maxBytes)}
	}
	data := make([]byte, enc.DecodedLen(len(payload)))
	n, err := enc.Decode(data, payload)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, invalid(fmt.Sprintf("bad base64 at byte %d", int64(ce)))
		}
		return nil, invalid("bad base64")
	}
	data = data[:n]
	if len(data) > maxBytes {
		return nil, &SampleError{Err: ErrSampleTooLarge, Reason: fmt.Sprintf("sample exceeds %d bytes", maxBytes)}
	}
	format, ok := sniff(data)
	if !ok {
		return nil, invalid("payload is not a " + string(declared) + " image")
	}
	return &Sample{Declared: declared, Format: format, Data: data}, nil
}

// parseMediaHeader parses "image/<subtype>;base64" (case-insensitive, no
// other parameters).
func parseMediaHeader(h []byte) (ImageFormat, error) {
	mt, enc, ok := bytes.Cut(h, []byte(";"))
	if !ok || !bytes.EqualFold(enc, []byte("base64")) {
		return "", invalid("data URL must be ;base64")
	}
	const image = "image/"
	if len(mt) < len(image) || !bytes.EqualFold(mt[:len(image)], []byte(image)) {
		return "", invalid("media type must be image/*")
	}
	f, ok := formatOf(string(bytes.ToLower(mt[len(image):])))
	if !ok {
		return "", invalid(fmt.Sprintf("unsupported image type %q", mt))
	}
	return f, nil
}

// sniff recognizes the accepted formats by their magic bytes.
func sniff(b []byte) (ImageFormat, bool) {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, true
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return JPEG, true
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return GIF, true
	case bytes.HasPrefix(b, []byte("BM")) && len(b) >= 26:
		return BMP, true
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return TIFF, true
	}
	return "", false
}
