package main

import "github.com/stateguard/stateguard/pkg/events/service"

func main() { service.Main(run) }
