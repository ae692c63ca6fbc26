//go:build !race

package gotas

const raceEnabled = false
