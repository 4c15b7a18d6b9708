package main

import (
	"github.com/stateguard/stateguard/pkg/runtime/service"

	"github.com/stateguard/stateguard/services/certwatcher/internal/app"
)

func main() { service.Main(app.Run) }
