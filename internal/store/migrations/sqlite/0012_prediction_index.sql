-- Feedback is joined to predictions through prediction_feedback's primary
-- key, and nothing looks predictions up by request id alone: the index
-- cost every logged prediction a B-tree insert at a random key for no
-- reader.
DROP INDEX predictions_by_request;
