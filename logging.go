package proficienthmac

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// levelCritical is Cloud Logging's CRITICAL: a configuration error that stops the instance.
const levelCritical = slog.Level(12)

// newLogger writes JSON lines in Cloud Logging's structured format.
func newLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: cloudLoggingAttr}))
}

// cloudLoggingAttr renames slog's keys to the ones Cloud Logging reads.
func cloudLoggingAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		a.Key = "severity"
		switch level := a.Value.Any().(slog.Level); {
		case level >= levelCritical:
			a.Value = slog.StringValue("CRITICAL")
		case level >= slog.LevelError:
			a.Value = slog.StringValue("ERROR")
		case level >= slog.LevelWarn:
			a.Value = slog.StringValue("WARNING")
		case level >= slog.LevelInfo:
			a.Value = slog.StringValue("INFO")
		default:
			a.Value = slog.StringValue("DEBUG")
		}
	case slog.MessageKey:
		a.Key = "message"
	}
	return a
}

// A requestLog writes each request's one log line: never the token, the secret or the HMAC.
type requestLog struct {
	log       *slog.Logger
	projectID string // for the trace's resource name
}

// An outcome is what a request's log line tells.
type outcome struct {
	code     int // the HTTP status sent
	refused  int // the refusal's HTTP status, even when it went out in a 200 stream
	reason   string
	protocol string // "" before the body is read; logged as form
	uid      string // "" before the token is verified
	appCheck string
	cause    error // for the log only
	// refusedOrigin is an Origin the CORS policy refused: the browser hides the reason from
	// the page, so the log names it and the variable to set.
	refusedOrigin string
}

// maxField bounds what a client controls in a log line (User-Agent, path, an SDK error that
// quotes a token's claims), so no request can make a line much over a few KiB.
const maxField = 1 << 10

// request logs one request's outcome.
func (l *requestLog) request(r *http.Request, start time.Time, o *outcome) {
	level := o.level()
	if !l.log.Enabled(r.Context(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.Attr{Key: "httpRequest", Value: slog.GroupValue(
			slog.String("requestMethod", bounded(r.Method)),
			slog.String("requestUrl", bounded(r.URL.Path)),
			slog.Int("status", o.code),
			slog.String("latency", strconv.FormatFloat(time.Since(start).Seconds(), 'f', 6, 64)+"s"),
			slog.String("userAgent", bounded(r.UserAgent())),
		)},
		slog.String("reason", o.reason))
	for _, a := range [...]struct{ key, value string }{{"form", o.protocol}, {"uid", o.uid}, {"appCheck", o.appCheck}} {
		if a.value != "" {
			attrs = append(attrs, slog.String(a.key, a.value))
		}
	}
	if o.cause != nil {
		attrs = append(attrs, slog.String("error", bounded(o.cause.Error())))
	}
	if o.refusedOrigin != "" {
		attrs = append(attrs, slog.String("refusedOrigin", bounded(o.refusedOrigin)),
			slog.String("fix", "browsers on this origin cannot read the answer: add it to CORS_ALLOWED_ORIGINS if they should"))
	}
	attrs = appendTrace(attrs, l.projectID, r.Header)
	// A Record with no program counter: the line names no source, so slog need not find one.
	record := slog.NewRecord(time.Now(), level, "request", 0)
	record.AddAttrs(attrs...)
	_ = l.log.Handler().Handle(r.Context(), record)
}

// level is the severity of a request's log line: WARNING for a refusal, an origin CORS refused,
// or an invalid App Check token that was not enforced.
func (o outcome) level() slog.Level {
	switch code := max(o.code, o.refused); {
	case code >= 500:
		return slog.LevelError
	case code >= 400 || o.appCheck == appCheckInvalid || o.refusedOrigin != "":
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// bounded cuts s to maxField bytes, on a rune boundary, marking the cut.
func bounded(s string) string {
	if len(s) <= maxField {
		return s
	}
	cut := maxField
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("…(%d bytes)", len(s))
}

// appendTrace links a log line to the request's trace, from X-Cloud-Trace-Context
// ("TRACE_ID/SPAN_ID;o=1", the span ID in decimal) or else W3C traceparent.
func appendTrace(attrs []slog.Attr, projectID string, header http.Header) []slog.Attr {
	var traceID, spanID string
	sampled := false
	if v := header.Get("X-Cloud-Trace-Context"); v != "" {
		var rest string
		traceID, rest, _ = strings.Cut(v, "/")
		decimalSpan, options, _ := strings.Cut(rest, ";")
		if n, err := strconv.ParseUint(decimalSpan, 10, 64); err == nil && n != 0 {
			spanID = hex16(n)
		}
		sampled = options == "o=1"
	} else if v := header.Get("traceparent"); len(v) == 55 && v[2] == '-' && v[35] == '-' && v[52] == '-' {
		traceID, spanID, sampled = v[3:35], v[36:52], v[53:55] == "01"
	}
	if !isHex(traceID) || len(traceID) > 32 || projectID == "" {
		return attrs
	}
	attrs = append(attrs, slog.String("logging.googleapis.com/trace", "projects/"+projectID+"/traces/"+traceID))
	if isHex(spanID) {
		attrs = append(attrs, slog.String("logging.googleapis.com/spanId", spanID))
	}
	return append(attrs, slog.Bool("logging.googleapis.com/trace_sampled", sampled))
}

// hex16 is n as the 16 hex digits Cloud Logging wants for a span ID.
func hex16(n uint64) string {
	var b [16]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = "0123456789abcdef"[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

func isHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// A logWriter batches log lines and writes them within flushDelay, so a busy instance makes one
// write(2) per batch rather than one per request. Flush writes what
// is pending at once: on SIGTERM and before a configuration error stops the instance. The
// write(2) happens outside the lock that requests take to add their lines, so no request waits
// on the pipe.
type logWriter struct {
	out     io.Writer
	writing sync.Mutex // held by the one flush under way, so batches go out in order
	spare   []byte     // the last batch's buffer, for the next; only under writing

	mu        sync.Mutex // guards what follows
	buf       []byte
	timer     *time.Timer
	scheduled bool
}

const (
	flushDelay   = time.Millisecond
	flushAtBytes = 32 << 10
)

func newLogWriter(out io.Writer) *logWriter {
	l := &logWriter{out: out}
	l.timer = time.AfterFunc(time.Hour, func() { l.Flush() })
	l.timer.Stop()
	return l
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= flushAtBytes
	if !full && !l.scheduled {
		l.scheduled = true
		l.timer.Reset(flushDelay)
	}
	l.mu.Unlock()
	if full {
		return len(p), l.Flush()
	}
	return len(p), nil
}

// Flush writes out everything buffered.
func (l *logWriter) Flush() error {
	l.writing.Lock()
	defer l.writing.Unlock()
	l.mu.Lock()
	batch := l.buf
	l.buf, l.spare = l.spare[:0], nil
	l.scheduled = false
	l.mu.Unlock()
	var err error
	if len(batch) > 0 {
		_, err = l.out.Write(batch)
	}
	l.spare = batch[:0]
	return err
}
