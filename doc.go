// Package entente holds repository-wide tests; the daemon lives in
// cmd/entente and the packages beside it (see README.md).
package entente
