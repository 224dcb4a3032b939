package mesoscodec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// MaxRecord bounds one RecordIO record. A real master sends all the offers
// of one allocation cycle in one OFFERS event (mesos-api.md 1.2), about
// 1 KB an offer in protobuf and 2-3 KB in JSON, so 10,000 agents make a
// record of tens of MB; the bound only stops a corrupt length from
// allocating without limit.
const MaxRecord = 1 << 30

// keepBuffer is the largest buffer kept between records; a larger record
// gets a buffer of its own that is dropped once decoded, so one huge OFFERS
// event does not pin its size in memory for the life of the stream.
const keepBuffer = 1 << 20

// RecordReader reads RecordIO (mesos-api.md 1.2): a decimal length, "\n",
// then that many bytes. Zero-length records are skipped and whitespace
// around the length is tolerated, as mesos-go does.
type RecordReader struct {
	r   *bufio.Reader
	buf []byte
	max int
}

// NewRecordReader reads records of at most max bytes (MaxRecord if max <= 0).
func NewRecordReader(r io.Reader, max int) *RecordReader {
	if max <= 0 {
		max = MaxRecord
	}
	return &RecordReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// errBadLength is wrapped by every framing error.
var errBadLength = errors.New("recordio: bad record length")

// Next returns the next record. The slice is valid until the next call.
// At the end of the stream it returns io.EOF; a stream cut inside a
// record, io.ErrUnexpectedEOF.
func (rr *RecordReader) Next() ([]byte, error) {
	for {
		n, err := rr.length()
		if err != nil {
			return nil, err
		}
		if n == 0 {
			continue
		}
		if n > rr.max {
			return nil, fmt.Errorf("%w: %d bytes is over the %d byte limit", errBadLength, n, rr.max)
		}
		b := rr.buffer(n)
		if _, err := io.ReadFull(rr.r, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("recordio: reading a %d byte record: %w", n, err)
		}
		return b, nil
	}
}

func (rr *RecordReader) buffer(n int) []byte {
	if n > keepBuffer {
		return make([]byte, n)
	}
	if cap(rr.buf) < n {
		rr.buf = make([]byte, n, keepBuffer)
	}
	return rr.buf[:n]
}

// length reads the decimal length line.
func (rr *RecordReader) length() (int, error) {
	var digits []byte
	for {
		c, err := rr.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(digits) > 0 {
				return 0, fmt.Errorf("recordio: stream ended inside a length: %w", io.ErrUnexpectedEOF)
			}
			return 0, err
		}
		switch {
		case c == '\n':
			if len(digits) == 0 {
				continue // a blank line: nothing to read yet
			}
			n, err := strconv.ParseUint(string(digits), 10, 63)
			if err != nil {
				return 0, fmt.Errorf("%w: %q", errBadLength, digits)
			}
			return int(n), nil
		case c == ' ' || c == '\t' || c == '\r':
		case c >= '0' && c <= '9' && len(digits) < 20:
			digits = append(digits, c)
		default:
			return 0, fmt.Errorf("%w: unexpected byte %q after %q", errBadLength, c, digits)
		}
	}
}
