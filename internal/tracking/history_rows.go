package tracking

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/slipwayml/slipway/internal/store"
)

// eachHistoryRow runs query, whose columns are historyQuery's (value or
// NULL for NaN, timestamp, step), and calls fn for every row.
//
// A long history is read through the driver's own rows rather than through
// database/sql's Rows.Scan: Scan takes a lock and converts every column by
// reflection, which for 100,000 points was a sixth of get-history's time.
// Both drivers (modernc SQLite, pgx's stdlib) hand out a
// driver.QueryerContext; any other falls back to Scan.
func (s *Service) eachHistoryRow(ctx context.Context, query string, args []any, fn func(value float64, timestamp, step int64) error) error {
	conn, err := s.db.Read.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		q, ok := dc.(driver.QueryerContext)
		if !ok {
			return errNoQueryer
		}
		if s.db.Dialect == store.Postgres {
			tx, err := beginUnsorted(ctx, dc)
			if err != nil {
				return err
			}
			// Read only: rolling back ends it as well as a commit would. A
			// connection left in the transaction is discarded by pgx.
			defer tx.Rollback()
		}
		return eachDriverRow(ctx, q, s.db.Q(query), args, fn)
	})
	if !errors.Is(err, errNoQueryer) {
		return err
	}
	conn.Close()
	var value sql.NullFloat64
	var timestamp, step int64
	return s.db.EachRow(ctx, query, args, func(rows *sql.Rows) error {
		if err := rows.Scan(&value, &timestamp, &step); err != nil {
			return err
		}
		if !value.Valid {
			value.Float64 = math.NaN()
		}
		return fn(value.Float64, timestamp, step)
	})
}

// beginUnsorted opens a read-only transaction in which PostgreSQL's planner
// avoids sorting. A history's rows come in order from the primary key's
// index (run_uuid, key, step, timestamp, value, is_nan); but on a database
// whose statistics are missing or stale (a new one, or right after a large
// log-batch, until the server's periodic ANALYZE) PostgreSQL estimated 2
// rows where there were 100,000, chose a bitmap heap scan and then sorted
// them on disk: 105 ms in the database instead of 28 ms. enable_sort only
// penalises sorting, so a query that needs one still runs.
func beginUnsorted(ctx context.Context, dc any) (driver.Tx, error) {
	b, ok := dc.(driver.ConnBeginTx)
	e, ok2 := dc.(driver.ExecerContext)
	if !ok || !ok2 {
		return nil, fmt.Errorf("tracking: PostgreSQL driver cannot begin a transaction")
	}
	tx, err := b.BeginTx(ctx, driver.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	if _, err := e.ExecContext(ctx, "SET LOCAL enable_sort = off", nil); err != nil {
		tx.Rollback()
		return nil, err
	}
	return tx, nil
}

func eachDriverRow(ctx context.Context, q driver.QueryerContext, query string, args []any, fn func(value float64, timestamp, step int64) error) error {
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := q.QueryContext(ctx, query, named)
	if err != nil {
		return err
	}
	defer rows.Close()
	dest := make([]driver.Value, 3)
	for {
		if err := rows.Next(dest); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		value, err := historyFloat(dest[0])
		if err != nil {
			return err
		}
		timestamp, err := historyInt(dest[1])
		if err != nil {
			return err
		}
		step, err := historyInt(dest[2])
		if err != nil {
			return err
		}
		if err := fn(value, timestamp, step); err != nil {
			return err
		}
	}
}

var errNoQueryer = errors.New("tracking: driver has no QueryerContext")

// historyFloat converts a value column: NULL is a NaN.
func historyFloat(v driver.Value) (float64, error) {
	switch v := v.(type) {
	case nil:
		return math.NaN(), nil
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	case float32:
		return float64(v), nil
	}
	return 0, fmt.Errorf("metric value: unexpected %T", v)
}

func historyInt(v driver.Value) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case int32:
		return int64(v), nil
	}
	return 0, fmt.Errorf("metric timestamp or step: unexpected %T", v)
}
