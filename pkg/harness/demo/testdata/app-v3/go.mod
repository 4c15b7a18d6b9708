module example.com/shopdb

go 1.26
