// Package dataset reads and writes liveness evaluation sets and generates
// them from photos, head-motion videos and the shared attack data.
//
// The layout anyone can extend: DIR/<case>/meta.json plus the case's
// samples as image files in upload order (0001.jpg, 0002.jpg, …; any name
// works, they are sorted naturally). meta.json:
//
//	{"label":"bona-fide"|"attack", "attack":"print|print-moved|…", "tags":["any","left",…]}
//
// tags has one entry per image, in order; all "any" means the job carried
// no challenge (liveness only).
package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// Labels.
const (
	LabelBonaFide = "bona-fide"
	LabelAttack   = "attack"
)

// Attack types the generators produce. Other names in meta.json are kept
// as they are.
const (
	AttackPrint       = "print"        // a print held still (hand tremor only)
	AttackPrintMoved  = "print-moved"  // translated, scaled, rotated in its plane
	AttackPrintTilted = "print-tilted" // turned about its vertical/horizontal axis with the challenge
	AttackPrintBent   = "print-bent"   // bent around a cylinder and turned
	AttackScreen      = "screen"       // a screen replaying a live sequence
	AttackMask        = "mask"         // a tilted print with live eyes and mouth in cut-outs
)

// Meta is a case's meta.json.
type Meta struct {
	Label  string   `json:"label"`
	Attack string   `json:"attack,omitempty"`
	Tags   []string `json:"tags"`
	// Source says where the case comes from (ours; informative only).
	Source string `json:"source,omitempty"`
}

// Case is one job of an evaluation set.
type Case struct {
	Name   string
	Dir    string
	Meta   Meta
	Images []string // paths in upload order
	// Tags has one entry per image (meta.json's tags, padded with "any"
	// or cut to the number of images).
	Tags []string
	// Notes lists problems found while reading (tag count mismatch, …).
	Notes []string
}

// BonaFide reports whether the case is labelled bona fide.
func (c *Case) BonaFide() bool { return c.Meta.Label == LabelBonaFide }

// AttackType is the case's attack type ("unknown" when an attack names none).
func (c *Case) AttackType() string {
	if c.Meta.Attack == "" {
		return "unknown"
	}
	return c.Meta.Attack
}

// Challenge reports whether any tag is a direction.
func (c *Case) Challenge() bool {
	for _, t := range c.Tags {
		if t != "any" && t != "" {
			return true
		}
	}
	return false
}

var imageExt = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".bmp": true, ".gif": true, ".tif": true, ".tiff": true}

// ReadCases lists the cases under dir: every sub-folder with a meta.json,
// in name order. A folder without meta.json is skipped; a malformed
// meta.json is an error naming the file.
func ReadCases(dir string) ([]Case, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read evaluation set: %w", err)
	}
	var out []Case
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := ReadCase(filepath.Join(dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no cases (sub-folders with meta.json) in %s", dir)
	}
	return out, nil
}

// ReadCase reads one case folder. It returns an error wrapping
// fs.ErrNotExist when the folder has no meta.json.
func ReadCase(dir string) (Case, error) {
	c := Case{Name: filepath.Base(dir), Dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c.Meta); err != nil {
		return c, fmt.Errorf("%s: %w", filepath.Join(dir, "meta.json"), err)
	}
	c.Meta.Label = normaliseLabel(c.Meta.Label)
	if c.Meta.Label == "" {
		return c, fmt.Errorf("%s: label must be %q or %q", filepath.Join(dir, "meta.json"), LabelBonaFide, LabelAttack)
	}
	c.Meta.Attack = strings.TrimSpace(c.Meta.Attack)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return c, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && imageExt[strings.ToLower(filepath.Ext(e.Name()))] {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, naturalCompare)
	for _, n := range names {
		c.Images = append(c.Images, filepath.Join(dir, n))
	}
	c.Tags = make([]string, len(c.Images))
	for i := range c.Tags {
		c.Tags[i] = "any"
		if i < len(c.Meta.Tags) {
			c.Tags[i] = strings.ToLower(strings.TrimSpace(c.Meta.Tags[i]))
		}
	}
	if len(c.Meta.Tags) != len(c.Images) {
		c.Notes = append(c.Notes, fmt.Sprintf("%d tags for %d images", len(c.Meta.Tags), len(c.Images)))
	}
	return c, nil
}

// normaliseLabel accepts the usual spellings of the two labels.
func normaliseLabel(l string) string {
	switch strings.ToLower(strings.TrimSpace(l)) {
	case "bona-fide", "bonafide", "bona_fide", "bona fide", "live", "real", "genuine":
		return LabelBonaFide
	case "attack", "spoof", "fake", "presentation-attack":
		return LabelAttack
	}
	return ""
}

// naturalCompare orders names with digit runs compared as numbers, so
// 2.jpg sorts before 10.jpg.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		if unicode.IsDigit(rune(a[0])) && unicode.IsDigit(rune(b[0])) {
			na, ra := digitRun(a)
			nb, rb := digitRun(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return len(ta) - len(tb)
			}
			if c := strings.Compare(ta, tb); c != 0 {
				return c
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return int(a[0]) - int(b[0])
		}
		a, b = a[1:], b[1:]
	}
	return len(a) - len(b)
}

func digitRun(s string) (run, rest string) {
	i := 0
	for i < len(s) && unicode.IsDigit(rune(s[i])) {
		i++
	}
	return s[:i], s[i:]
}

// WriteCase writes one case: meta.json and the images as 0001.jpg, … at
// the given JPEG quality. meta.Tags must have one tag per image.
func WriteCase(dir string, meta Meta, imgs []image.Image, quality int) error {
	if len(meta.Tags) != len(imgs) {
		return fmt.Errorf("case %s: %d tags for %d images", dir, len(meta.Tags), len(imgs))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i, img := range imgs {
		if err := writeJPEG(filepath.Join(dir, fmt.Sprintf("%04d.jpg", i+1)), img, quality); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "meta.json"), append(data, '\n'), 0o644)
}

func writeJPEG(path string, img image.Image, quality int) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := jpeg.Encode(fh, img, &jpeg.Options{Quality: quality}); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fh.Close()
}

// Fingerprint identifies the case's files as they are now: meta.json's
// content and each image's name, size and modification time. A cache of
// analysed samples is valid only for the same fingerprint (a set generated
// again into the same folder keeps its case names).
func (c *Case) Fingerprint() (string, error) {
	h := sha256.New()
	meta, err := os.ReadFile(filepath.Join(c.Dir, "meta.json"))
	if err != nil {
		return "", err
	}
	h.Write(meta)
	for _, p := range c.Images {
		st, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00%d", filepath.Base(p), st.Size(), st.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
