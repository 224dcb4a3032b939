package mesoscodec

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/client"
	"github.com/mesos/mesos-go/api/v1/lib/encoding"
	"github.com/mesos/mesos-go/api/v1/lib/encoding/codecs"
	"github.com/mesos/mesos-go/api/v1/lib/httpcli"
	"google.golang.org/protobuf/encoding/protowire"
)

// Codec is what dcos-consul sends to Mesos: protobuf calls, asking for
// protobuf answers (Accept: application/x-protobuf). Production Mesos
// frameworks speak protobuf; it survives fields and enum values the
// protos do not know by construction.
var Codec = codecs.ByMediaType[codecs.MediaTypeProtobuf]

// Options make an httpcli.Client send with Codec and read every answer
// with this package's decoders. They must come after any other
// httpcli.HandleResponse option.
func Options(cli *httpcli.Client) []httpcli.Opt {
	return []httpcli.Opt{httpcli.Codec(Codec), httpcli.HandleResponse(ResponseHandler(cli))}
}

// ResponseHandler reads 200 answers itself: by their own Content-Type
// (protobuf or JSON, whatever was asked for), a RecordIO stream (no
// Content-Length) or a single object, records of up to MaxRecord bytes
// (mesos-go's reader stops at 4 MiB, below one OFFERS event of a large
// cluster). Everything else goes to mesos-go's own handler.
func ResponseHandler(cli *httpcli.Client) httpcli.ResponseHandler {
	return func(res *http.Response, rc client.ResponseClass, err error) (mesos.Response, error) {
		if err != nil || res.StatusCode != http.StatusOK || rc == client.ResponseClassNoData {
			return cli.HandleResponse(res, rc, err)
		}
		ct := res.Header.Get("Content-Type")
		if ct == "application/recordio" {
			ct = res.Header.Get("Message-Content-Type")
		}
		mt := kind(ct)
		if mt == "" {
			res.Body.Close()
			return nil, httpcli.ProtocolError(fmt.Sprintf("unexpected content type: %q", res.Header.Get("Content-Type")))
		}
		next := NewRecordReader(res.Body, 0).Next
		if res.ContentLength > -1 && rc != client.ResponseClassStreaming {
			next = singleObject(res.Body)
		}
		return &httpcli.Response{Closer: res.Body, Header: res.Header, Decoder: NewDecoder(mt, next)}, nil
	}
}

func singleObject(r io.Reader) func() ([]byte, error) {
	done := false
	return func() ([]byte, error) {
		if done {
			return nil, io.EOF
		}
		done = true
		b, err := io.ReadAll(io.LimitReader(r, MaxRecord))
		if err != nil {
			return nil, fmt.Errorf("reading the answer: %w", err)
		}
		return b, nil
	}
}

// NewDecoder decodes each record that next returns as one message of
// media type mt.
func NewDecoder(mt string, next func() ([]byte, error)) encoding.Decoder {
	return encoding.DecoderFunc(func(u encoding.Unmarshaler) error {
		b, err := next()
		if err != nil {
			return err
		}
		m, ok := u.(proto.Message)
		if !ok {
			return fmt.Errorf("cannot decode into %T: not a protobuf message", u)
		}
		if err := Unmarshal(mt, b, m); err != nil {
			return &DecodeError{Err: err, FrameworkID: subscribedFrameworkID(mt, b), Size: len(b)}
		}
		return nil
	})
}

// DecodeError is an event that could not be decoded. When it was a
// scheduler SUBSCRIBED event, FrameworkID is the ID the master gave, read
// from the few bytes that name it, so that the scheduler re-subscribes as
// that framework instead of registering a new one.
type DecodeError struct {
	Err         error
	FrameworkID string
	Size        int
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding a %d byte event: %v", e.Size, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// subscribedFrameworkID finds subscribed.framework_id.value in a scheduler
// event that did not decode, or "".
func subscribedFrameworkID(mt string, b []byte) string {
	if mt == MediaJSON {
		var e struct {
			Subscribed struct {
				FrameworkID struct {
					Value string `json:"value"`
				} `json:"framework_id"`
			} `json:"subscribed"`
		}
		if json.Unmarshal(b, &e) != nil {
			return ""
		}
		return e.Subscribed.FrameworkID.Value
	}
	// Event.subscribed = 2, Subscribed.framework_id = 1, FrameworkID.value = 1.
	for _, num := range []protowire.Number{2, 1, 1} {
		b = bytesField(b, num)
		if b == nil {
			return ""
		}
	}
	return string(b)
}

// bytesField returns the last length-delimited field num of a protobuf
// message, or nil.
func bytesField(b []byte, num protowire.Number) []byte {
	var found []byte
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, vl := protowire.ConsumeBytes(b)
			if vl < 0 {
				return nil
			}
			found, b = v, b[vl:]
			continue
		}
		fl := protowire.ConsumeFieldValue(n, typ, b)
		if fl < 0 {
			return nil
		}
		b = b[fl:]
	}
	return found
}

// IsDecodeError tells a stream that broke on an undecodable event.
func IsDecodeError(err error) bool {
	var de *DecodeError
	return errors.As(err, &de)
}
