// Package interop holds the tests that run gotas against the Linux
// kernel's TCP in another network namespace over AF_XDP on a veth, with the
// Linux peer left at its defaults (offloads on). It has no code of its own.
package interop
