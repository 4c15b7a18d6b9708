// Package retention decides which snapshots of one PVC to keep and which to
// delete. It is pure: it takes the snapshots, the policy and now, and returns
// a plan in which every snapshot carries the reasons it is kept or deleted.
//
// The rules follow restic's forget policy: snapshots are walked newest first;
// keepLast keeps the newest n; hourly, daily, weekly, monthly and yearly each
// keep the newest snapshot of the last n buckets (hours, days, ISO weeks,
// months, years in the policy's time zone) that contain one. A snapshot is
// kept when any rule keeps it. maxAge then removes snapshots older than it.
// Two guards override everything: a pinned snapshot is never deleted, and
// neither is the newest ready one.
package retention
