import '@testing-library/react';
import './i18n';
import './i18n/common';
