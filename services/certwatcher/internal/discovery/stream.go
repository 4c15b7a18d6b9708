package discovery

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
)

// errNotProtobuf says the API server did not answer in protobuf; the caller
// lists the ordinary way.
var errNotProtobuf = errors.New("list response is not protobuf")

// protobufMagic starts every Kubernetes protobuf body.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00} // "k8s\x00"

// streamSecrets lists one page of Secrets, calling each with every Secret
// (and keeping what each returns) as it is decoded from the response body — while the rest is still being
// received — instead of after the whole body has been read, as a client-go
// List does. The page is returned as a List would return it. The body is
// the Kubernetes protobuf encoding: the magic, then a runtime.Unknown whose
// raw field holds the SecretList, whose ListMeta comes before its items.
func streamSecrets(ctx context.Context, rc rest.Interface, namespace string, o metav1.ListOptions, each func(*corev1.Secret) *corev1.Secret) (*corev1.SecretList, error) {
	body, err := rc.Get().Namespace(namespace).Resource("secrets").
		VersionedParams(&o, scheme.ParameterCodec).
		SetHeader("Accept", "application/vnd.kubernetes.protobuf").
		Stream(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = body.Close() }()
	return decodeSecretStream(body, each)
}

// decodeSecretStream decodes a protobuf SecretList response body.
func decodeSecretStream(body io.Reader, each func(*corev1.Secret) *corev1.Secret) (*corev1.SecretList, error) {
	r := bufio.NewReaderSize(body, 64<<10)
	magic := make([]byte, len(protobufMagic))
	if _, err := io.ReadFull(r, magic); err != nil || !bytes.Equal(magic, protobufMagic) {
		return nil, errNotProtobuf
	}
	out := &corev1.SecretList{}
	var buf []byte
	sawList := false
	// runtime.Unknown: 1 typeMeta, 2 raw, 3 contentEncoding, 4 contentType,
	// all length-delimited.
	for {
		field, n, err := readField(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch field {
		case 2:
			if err := decodeSecretList(io.LimitReader(r, int64(n)), n, out, &buf, each); err != nil {
				return nil, err
			}
			sawList = true
		case 3:
			if buf, err = readN(r, n, buf); err != nil {
				return nil, err
			}
			if n != 0 {
				return nil, fmt.Errorf("list response with content encoding %q", buf)
			}
		default:
			if buf, err = readN(r, n, buf); err != nil {
				return nil, err
			}
		}
	}
	if !sawList {
		return nil, errors.New("list response without a list")
	}
	return out, nil
}

// decodeSecretList reads a SecretList of n bytes: 1 metadata, 2 items.
func decodeSecretList(r io.Reader, n uint64, out *corev1.SecretList, buf *[]byte, each func(*corev1.Secret) *corev1.Secret) error {
	br := &countingReader{r: r}
	for br.n < n {
		field, size, err := readField(br)
		if err != nil {
			return fmt.Errorf("secret list: %w", noEOF(err))
		}
		if *buf, err = readN(br, size, *buf); err != nil {
			return fmt.Errorf("secret list: %w", noEOF(err))
		}
		switch field {
		case 1:
			if err := out.ListMeta.Unmarshal(*buf); err != nil {
				return fmt.Errorf("secret list metadata: %w", err)
			}
		case 2:
			// Unmarshal copies what it keeps, so buf is reused.
			s := &corev1.Secret{}
			if err := s.Unmarshal(*buf); err != nil {
				return fmt.Errorf("secret %d: %w", len(out.Items), err)
			}
			out.Items = append(out.Items, *each(s))
		}
	}
	return nil
}

// readField reads a protobuf tag that must be length-delimited and its
// length.
func readField(r io.ByteReader) (field int, n uint64, err error) {
	tag, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, 0, err
	}
	if tag&7 != 2 {
		return 0, 0, fmt.Errorf("protobuf field %d has wire type %d, want 2", tag>>3, tag&7)
	}
	n, err = binary.ReadUvarint(r)
	if err != nil {
		return 0, 0, noEOF(err)
	}
	if n > 1<<30 {
		return 0, 0, fmt.Errorf("protobuf field %d of %d bytes", tag>>3, n)
	}
	return int(tag >> 3), n, nil
}

// readN reads n bytes into buf, growing it when needed.
func readN(r io.Reader, n uint64, buf []byte) ([]byte, error) {
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, noEOF(err)
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}
