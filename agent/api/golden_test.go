package api

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net/http"
	"strings"
	"testing"
	"time"
)

// bombPNG is a valid PNG header declaring width×height pixels with no
// pixel data: a decompression bomb's first bytes.
func bombPNG(width, height uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], width)
	binary.BigEndian.PutUint32(ihdr[4:], height)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// TestGolden pins every response shape and error path byte for byte:
// status, the headers clients rely on, and the body.
func TestGolden(t *testing.T) {
	f := newFixture(t)
	face := fileDataURL(t, gocvImage(t, "face.jpg"))
	still := staticSeq(t)
	noFace := pngDataURL(t, greyImage(120, 100))
	group := fileDataURL(t, faceAPIImage(t, "sample5.jpg"))
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

	// An enrolled class bws/12/1 (liveness off) for the calls that need one.
	tok := f.token("app1", "bcid=bws.12.1&task=enroll&livedetection=false")
	f.uploadAll(tok, []string{face})
	if res := f.perform(tok, "enroll"); !res.Success {
		t.Fatalf("setup enroll: %+v", res)
	}

	tests := []struct {
		name  string
		setup func() req
	}{
		// /token
		{"token_no_auth", func() req { return req{path: "token?id=app1&bcid=bws.12.1"} }},
		{"token_wrong_secret", func() req { return req{path: "token?id=app1&bcid=bws.12.1", app: "app1", secret: "nope"} }},
		{"token_unknown_app", func() req { return req{path: "token?id=ghost&bcid=bws.12.1", app: "ghost", secret: "nope"} }},
		{"token_missing_id", func() req { return req{path: "token?bcid=bws.12.1", app: "app1"} }},
		{"token_id_mismatch", func() req { return req{path: "token?id=app2&bcid=bws.12.1", app: "app1"} }},
		{"token_missing_bcid", func() req { return req{path: "token?id=app1", app: "app1"} }},
		{"token_bad_bcid", func() req { return req{path: "token?id=app1&bcid=bws.x.1", app: "app1"} }},
		{"token_bad_task", func() req { return req{path: "token?id=app1&bcid=bws.12.1&task=delete", app: "app1"} }},
		{"token_bad_maxtries", func() req { return req{path: "token?id=app1&bcid=bws.12.1&maxtries=16", app: "app1"} }},
		{"token_bad_bool", func() req { return req{path: "token?id=app1&bcid=bws.12.1&livedetection=maybe", app: "app1"} }},
		{"token_bad_traits", func() req { return req{path: "token?id=app1&bcid=bws.12.1&traits=Voicex", app: "app1"} }},
		{"token_bad_challenges", func() req { return req{path: "token?id=app1&bcid=bws.12.1&challenge=true&challenges=9", app: "app1"} }},
		{"token_challenge_without_live", func() req {
			return req{path: "token?id=app1&bcid=bws.12.1&challenge=true&livedetection=false", app: "app1"}
		}},
		{"token_autoenroll_not_verify", func() req {
			return req{path: "token?id=app1&bcid=bws.12.1&task=enroll&autoenroll=true", app: "app1"}
		}},
		{"token_other_partition", func() req { return req{path: "token?id=app1&bcid=bws.13.1", app: "app1"} }},
		{"token_other_storage", func() req { return req{path: "token?id=app3&bcid=bws.12.1", app: "app3"} }},
		{"token_bad_query", func() req { return req{path: "token?id=app1&bcid=%zz", app: "app1"} }},

		// /upload
		{"upload_no_token", func() req { return req{method: "POST", path: "upload", body: face} }},
		{"upload_bad_token", func() req { return req{method: "POST", path: "upload", bearer: "abc.def.ghi", body: face} }},
		{"upload_basic_instead_of_token", func() req { return req{method: "POST", path: "upload", app: "app1", body: face} }},
		{"upload_empty_body", func() req { return req{method: "POST", path: "upload", bearer: f.token("app1", "bcid=bws.12.2")} }},
		{"upload_not_a_data_url", func() req {
			return req{method: "POST", path: "upload", bearer: f.token("app1", "bcid=bws.12.2"), body: "liveimage1=abc"}
		}},
		{"upload_bad_base64", func() req {
			return req{method: "POST", path: "upload", bearer: f.token("app1", "bcid=bws.12.2"), body: "data:image/png;base64,!!!!"}
		}},
		{"upload_not_an_image", func() req {
			return req{method: "POST", path: "upload", bearer: f.token("app1", "bcid=bws.12.2"), body: dataURL("png", []byte("hello, world"))}
		}},
		{"upload_unsupported_type", func() req {
			return req{method: "POST", path: "upload", bearer: f.token("app1", "bcid=bws.12.2"), body: dataURL("webp", []byte("RIFF0000WEBP"))}
		}},
		{"upload_pixel_bomb", func() req {
			return req{method: "POST", path: "upload", bearer: f.token("app1", "bcid=bws.12.2"), body: dataURL("png", bombPNG(20000, 20000))}
		}},
		{"upload_too_large", func() req {
			big := "data:image/png;base64," + strings.Repeat("A", int(maxEncodedLen(f.cfg.MaxUploadBytes)))
			return req{method: "POST", path: "upload", bearer: f.token("app1", "bcid=bws.12.2"), body: big}
		}},
		{"upload_bad_tag", func() req {
			return req{method: "POST", path: "upload?tag=sideways", bearer: f.token("app1", "bcid=bws.12.2"), body: face}
		}},
		{"upload_bad_index", func() req {
			return req{method: "POST", path: "upload?index=-1", bearer: f.token("app1", "bcid=bws.12.2"), body: face}
		}},
		{"upload_bad_trait", func() req {
			return req{method: "POST", path: "upload?trait=Nose", bearer: f.token("app1", "bcid=bws.12.2"), body: face}
		}},
		{"upload_not_expected_type", func() req {
			return req{method: "POST", path: "upload?trait=Periocular", bearer: f.token("app1", "bcid=bws.12.2"), body: face}
		}},
		{"upload_accepted", func() req {
			return req{method: "POST", path: "upload?tag=any&index=1", bearer: f.token("app1", "bcid=bws.12.2"), body: face, header: form}
		}},
		{"upload_no_face", func() req {
			return req{method: "POST", path: "upload", bearer: f.token("app1", "bcid=bws.12.2"), body: noFace}
		}},
		{"upload_multiple_faces", func() req {
			return req{method: "POST", path: "upload", bearer: f.token("app1", "bcid=bws.12.2"), body: group}
		}},
		{"upload_too_many", func() req {
			tok := f.token("app1", "bcid=bws.12.2")
			for i := 0; i < f.cfg.MaxSamplesPerToken; i++ {
				f.upload(tok, face, "")
			}
			return req{method: "POST", path: "upload", bearer: tok, body: face}
		}},

		// biometric calls
		{"enroll_no_token", func() req { return req{path: "enroll"} }},
		{"enroll_expired_token", func() req {
			tok := f.token("app1", "bcid=bws.12.3&task=enroll&livedetection=false")
			f.uploadAll(tok, []string{face})
			f.clk.Add(11 * time.Minute)
			return req{path: "enroll", bearer: tok}
		}},
		{"enroll_no_samples", func() req { return req{path: "enroll", bearer: f.token("app1", "bcid=bws.12.3&task=enroll")} }},
		{"enroll_with_verify_token", func() req { return req{path: "enroll", bearer: f.token("app1", "bcid=bws.12.3")} }},
		{"enroll_success", func() req {
			tok := f.token("app1", "bcid=bws.12.3&task=enroll&livedetection=false")
			f.uploadAll(tok, []string{face})
			return req{path: "enroll", bearer: tok}
		}},
		{"enroll_samples_reused", func() req {
			tok := f.token("app1", "bcid=bws.12.3&task=enroll&livedetection=false")
			f.uploadAll(tok, []string{face})
			f.perform(tok, "enroll")
			return req{path: "enroll", bearer: tok}
		}},
		{"enroll_not_live", func() req {
			tok := f.token("app1", "bcid=bws.12.4&task=enroll")
			f.uploadAll(tok, still)
			return req{path: "enroll", bearer: tok}
		}},
		{"enroll_livedetection_param", func() req {
			tok := f.token("app1", "bcid=bws.12.4&task=enroll&livedetection=false")
			f.uploadAll(tok, still)
			return req{path: "enroll?livedetection=true", bearer: tok}
		}},
		{"enroll_not_enough_samples", func() req {
			tok := f.token("app1", "bcid=bws.12.4&task=enroll")
			f.uploadAll(tok, []string{face})
			return req{path: "enroll", bearer: tok}
		}},
		{"verify_success", func() req {
			tok := f.token("app1", "bcid=bws.12.1&livedetection=false")
			f.uploadAll(tok, []string{face})
			return req{path: "verify", bearer: tok}
		}},
		{"verify_no_template", func() req {
			tok := f.token("app1", "bcid=bws.12.999&livedetection=false")
			f.uploadAll(tok, []string{face})
			return req{path: "verify", bearer: tok}
		}},
		{"verify_tries_exhausted", func() req {
			tok := f.token("app1", "bcid=bws.12.1&livedetection=false&maxtries=1")
			f.uploadAll(tok, []string{face})
			f.perform(tok, "verify")
			f.uploadAll(tok, []string{face})
			return req{path: "verify", bearer: tok}
		}},
		{"verify_jwt_scheme", func() req {
			tok := f.token("app1", "bcid=bws.12.1&livedetection=false")
			f.uploadAll(tok, []string{face})
			return req{path: "verify", header: map[string]string{"Authorization": "JWT " + tok}}
		}},
		{"identify_success", func() req {
			tok := f.token("app1", "bcid=bws.12.0&task=identify&livedetection=false")
			f.uploadAll(tok, []string{face})
			return req{path: "identify?maxResults=5", bearer: tok}
		}},
		{"identify_no_match", func() req {
			tok := f.token("app2", "bcid=bws.13.0&task=identify&livedetection=false")
			f.uploadAll(tok, []string{face})
			return req{path: "identify", bearer: tok}
		}},
		{"identify_bad_maxresults", func() req {
			return req{path: "identify?maxresults=0", bearer: f.token("app1", "bcid=bws.12.0&task=identify")}
		}},
		{"livenessdetection_not_live", func() req {
			tok := f.token("app1", "task=livenessdetection")
			f.uploadAll(tok, still)
			return req{path: "livenessdetection", bearer: tok}
		}},
		{"livenessdetection_with_enroll_token", func() req {
			return req{path: "livenessdetection", bearer: f.token("app1", "bcid=bws.12.3&task=enroll")}
		}},

		// /result
		{"result_before_call", func() req {
			return req{path: "result?access_token=" + f.token("app1", "bcid=bws.12.1"), app: "app1"}
		}},
		{"result_enrollment", func() req {
			tok := f.token("app1", "bcid=bws.12.5&task=enroll&livedetection=false")
			f.uploadAll(tok, []string{face})
			f.perform(tok, "enroll")
			return req{path: "result?access_token=" + tok, app: "app1"}
		}},
		{"result_identification", func() req {
			tok := f.token("app1", "bcid=bws.12.0&task=identify&livedetection=false")
			f.uploadAll(tok, []string{face})
			f.perform(tok, "identify")
			return req{path: "result?access_token=" + tok, app: "app1"}
		}},
		{"result_failure", func() req {
			tok := f.token("app1", "bcid=bws.12.6")
			f.uploadAll(tok, still)
			f.perform(tok, "verify")
			return req{path: "result?access_token=" + tok, app: "app1"}
		}},
		{"result_other_app", func() req {
			return req{path: "result?access_token=" + f.token("app1", "bcid=bws.12.1"), app: "app2"}
		}},
		{"result_missing_token", func() req { return req{path: "result", app: "app1"} }},
		{"result_bad_token", func() req { return req{path: "result?access_token=x.y.z", app: "app1"} }},

		// other calls
		{"status", func() req { return req{path: "status", app: "app1"} }},
		{"isenrolled_yes", func() req { return req{path: "isenrolled?bcid=bws.12.1&trait=Face", app: "app1"} }},
		{"isenrolled_no", func() req { return req{path: "isenrolled?bcid=bws/12/77", app: "app1"} }},
		{"isenrolled_other_partition", func() req { return req{path: "isenrolled?bcid=bws.12.1", app: "app2"} }},
		{"isenrolled_bad_bcid", func() req { return req{path: "isenrolled?bcid=bws.12", app: "app1"} }},
		{"deleteclass", func() req { return req{method: "DELETE", path: "deleteclass?bcid=bws.12.5", app: "app1"} }},
		{"deleteclass_missing", func() req { return req{method: "DELETE", path: "deleteclass?bcid=bws.12.555", app: "app1"} }},
		{"deleteclass_bad_bcid", func() req { return req{method: "DELETE", path: "deleteclass?bcid=", app: "app1"} }},
		{"deleteclass_other_partition", func() req { return req{method: "DELETE", path: "deleteclass?bcid=bws.12.1", app: "app2"} }},
		{"livedetection_missing", func() req {
			return req{method: "POST", path: "livedetection", app: "app1", body: `{"liveimage1":"` + face + `"}`}
		}},
		{"livedetection_invalid", func() req {
			return req{method: "POST", path: "livedetection", app: "app1", body: `{"liveimage1":"data:x","liveimage2":"data:y"}`}
		}},
		{"livedetection_not_json", func() req {
			return req{method: "POST", path: "livedetection", app: "app1", body: `{"liveimage1":`}
		}},
		{"livedetection_still", func() req {
			return req{method: "POST", path: "livedetection", app: "app1", body: `{"liveimage1":"` + still[0] + `","liveimage2":"` + still[1] + `"}`}
		}},
		{"livedetection_form_still", func() req {
			return req{method: "POST", path: "livedetection", app: "app1", header: form, body: "liveimage1=" + still[0] + "&liveimage2=" + still[1]}
		}},
		{"qualitycheck_face", func() req { return req{method: "POST", path: "qualitycheck", app: "app1", body: face} }},
		{"qualitycheck_no_face", func() req { return req{method: "POST", path: "qualitycheck", app: "app1", body: noFace} }},
		{"qualitycheck_bad", func() req {
			return req{method: "POST", path: "qualitycheck", app: "app1", body: "data:image/png;base64,"}
		}},

		// routing and middleware
		{"unknown_route", func() req { return req{path: "nothing", app: "app1"} }},
		{"outside_base_path", func() req { return req{path: "/token"} }},
		{"method_not_allowed", func() req { return req{method: "POST", path: "token", app: "app1"} }},
		{"route_case_insensitive", func() req { return req{path: "Status", app: "app1"} }},
		{"foreign_host", func() req {
			return req{path: "status", app: "app1", header: map[string]string{"Host": "evil.example:8080"}}
		}},
		{"foreign_origin", func() req {
			return req{path: "status", app: "app1", header: map[string]string{"Origin": "https://evil.example"}}
		}},
		{"preflight_allowed", func() req {
			return req{method: "OPTIONS", path: "upload", header: map[string]string{"Origin": "https://ui.bioid.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}}
		}},
		{"preflight_foreign", func() req {
			return req{method: "OPTIONS", path: "upload", header: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}}
		}},
		{"cors_own_origin", func() req {
			return req{path: "status", app: "app1", header: map[string]string{"Origin": testPublicURL}}
		}},
		{"auth_lockout", func() req {
			for i := 0; i < f.cfg.AuthFailures; i++ {
				f.do(req{path: "status", app: "app3", secret: "guess"})
			}
			return req{path: "status", app: "app3"} // the right secret, but locked
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := f.clk.Now()
			r := f.do(tt.setup())
			f.clk.Add(start.Sub(f.clk.Now())) // cases may move the clock
			golden(t, tt.name, goldenResponse(r))
		})
	}

	t.Run("token_ok", func(t *testing.T) {
		r := f.do(req{path: "token?id=app1&bcid=bws.12.1&task=enroll", app: "app1"})
		parts := strings.Split(string(r.Body), ".")
		if r.Code != http.StatusOK || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" || len(parts) != 3 {
			t.Fatalf("got %v", r)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		// Claims with the values the clock and the request fix.
		for _, want := range []string{`"app":"app1"`, `"clnt":"App One"`, `"bcid":"bws/12/1"`, `"task":291`, `"traits":1`,
			`"iss":"BWS"`, `"aud":"` + testPublicURL + `"`, fmt.Sprintf(`"nbf":%d`, f.clk.Now().Unix()), fmt.Sprintf(`"exp":%d`, f.clk.Now().Add(600*time.Second).Unix())} {
			if !strings.Contains(string(payload), want) {
				t.Errorf("claims %s lack %s", payload, want)
			}
		}
	})
}
